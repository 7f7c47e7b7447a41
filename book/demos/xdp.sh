# Guest half of the XDP demos, with /tmp/drop_icmp.bpf.o unpacked.
# Usage: xdp.sh ping|test-run
what=${1:?what to show}
set -e
/sbin/ip link set dev lo up

case "$what" in
ping)
    echo '$ ping -c 2 127.0.0.1'
    ping -c 2 -W 1 127.0.0.1
    echo
    echo '$ ip link set dev lo xdpgeneric obj drop_icmp.bpf.o sec xdp'
    /sbin/ip link set dev lo xdpgeneric obj /tmp/drop_icmp.bpf.o sec xdp
    echo '$ ip link show dev lo'
    /sbin/ip link show dev lo
    echo
    echo '$ ping -c 2 127.0.0.1'
    ping -c 2 -W 1 127.0.0.1 || echo "(ping exited with status $?)"
    echo
    echo "\$ bpftool map dump name counts | grep -B1 -A2 '\"key\": 1,'"
    bpftool map dump name counts | grep -B1 -A2 '"key": 1,'
    echo
    echo '$ bpftool net show dev lo'
    bpftool net show dev lo
    /sbin/ip link set dev lo xdpgeneric off
    ;;
test-run)
    bpftool prog load /tmp/drop_icmp.bpf.o /sys/fs/bpf/drop_icmp
    # A minimal Ethernet + IPv4 header: EtherType 0x0800, protocol at
    # byte 23. First an ICMP packet (protocol 1), then UDP (protocol 17).
    header() {
        printf '\000\000\000\000\000\000\000\000\000\000\000\000\010\000'
        printf '\105\000\000\024\000\000\000\000\100'
        printf "$1"
        printf '\000\000\177\000\000\001\177\000\000\001'
    }
    header '\001' >/tmp/icmp.bin
    header '\021' >/tmp/udp.bin
    echo '$ bpftool prog run pinned /sys/fs/bpf/drop_icmp data_in icmp.bin repeat 1000'
    bpftool prog run pinned /sys/fs/bpf/drop_icmp data_in /tmp/icmp.bin repeat 1000
    echo '$ bpftool prog run pinned /sys/fs/bpf/drop_icmp data_in udp.bin repeat 1000'
    bpftool prog run pinned /sys/fs/bpf/drop_icmp data_in /tmp/udp.bin repeat 1000
    ;;
esac
