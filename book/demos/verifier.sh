# Guest half of the verifier demos: load /tmp/NAME.bpf.o with bpftool, which
# prints the verifier's log when the kernel rejects the program. A log can
# run to hundreds of thousands of lines (the verifier walks every path), so
# a long one is cut to its beginning and its end, which say the most.
# Usage: verifier.sh NAME
name=${1:?program name}
status=0
bpftool prog load "/tmp/$name.bpf.o" "/sys/fs/bpf/$name" >/tmp/load.log 2>&1 || status=$?
lines=$(wc -l </tmp/load.log)
if [ "$lines" -gt 60 ]; then
    head -n 30 /tmp/load.log
    echo "[... $((lines - 40)) lines of the log left out ...]"
    tail -n 10 /tmp/load.log
else
    cat /tmp/load.log
fi
if [ "$status" -eq 0 ]; then
    bpftool prog show pinned "/sys/fs/bpf/$name"
fi
exit "$status"
