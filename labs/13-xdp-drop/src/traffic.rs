//! `traffic NETNS LOCAL PEER PINGS ECHOES TCP_PORT MESSAGES BLOCKED OTHERS... -- DATAGRAMS...`
//!
//! The grader's workload and its record. This process stays in the
//! namespace of the interface with the XDP program (address LOCAL) and
//! receives there; one of its threads moves into the network namespace
//! NETNS (address PEER) and sends from it, so that everything it sends
//! arrives through the XDP program:
//!
//! - PINGS ICMP echo requests from the peer to LOCAL (to be dropped);
//! - ECHOES echo requests from here to the peer, whose replies come back
//!   through the program (to be passed);
//! - UDP datagrams to the port BLOCKED (to be dropped) and to each of the
//!   OTHERS (to be passed): DATAGRAMS gives how many to each, BLOCKED's
//!   first; they are sent interleaved, and the first one to each of the
//!   OTHERS goes out from the port BLOCKED (only the destination port
//!   decides);
//! - a TCP connection to TCP_PORT carrying MESSAGES messages, each echoed;
//! - two Ethernet frames of another protocol (EtherType 0x88b5) whose
//!   payloads look like an IPv4 echo request and an IPv4 datagram to
//!   BLOCKED (to be passed: they are not IPv4), read here from a packet
//!   socket;
//! - from here, a UDP datagram to a port on which nothing listens in the
//!   peer's namespace, whose ICMP port unreachable comes back through the
//!   program (to be passed).
//!
//! It prints, as JSON on stdout, what it sent and what arrived, read from
//! its own sockets: what the kernel delivered to them.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};

/// How long to wait for an answer that may never come.
const WAIT: Duration = Duration::from_millis(1500);
/// The ICMP identifiers of the two sides' pings.
const PEER_ID: u16 = 0x1302;
const LOCAL_ID: u16 = 0x1301;

struct Plan {
    netns: String,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    pings: u16,
    echoes: u16,
    /// (port, datagrams), the blocked port first.
    ports: Vec<(u16, u32)>,
    tcp_port: u16,
    messages: u32,
}

fn number<T: std::str::FromStr>(what: &str, text: &str) -> anyhow::Result<T> {
    text.trim().parse().map_err(|_| anyhow::anyhow!("{what}: {text:?} is not a number in range"))
}

impl Plan {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let usage = "usage: traffic NETNS LOCAL PEER PINGS ECHOES TCP_PORT MESSAGES BLOCKED OTHERS... -- DATAGRAMS...";
        let [netns, local, peer, pings, echoes, tcp_port, messages, rest @ ..] = args else { bail!(usage) };
        let split = rest.iter().position(|a| a == "--").context(usage)?;
        let ports = rest[..split].iter().map(|p| number::<u16>("a UDP port", p)).collect::<anyhow::Result<Vec<_>>>()?;
        let counts =
            rest[split + 1..].iter().map(|n| number::<u32>("DATAGRAMS", n)).collect::<anyhow::Result<Vec<_>>>()?;
        ensure!(!ports.is_empty(), "{usage}");
        ensure!(counts.len() == ports.len(), "DATAGRAMS needs one count per port ({} ports)", ports.len());
        let mut seen = std::collections::BTreeSet::new();
        ensure!(ports.iter().all(|p| seen.insert(*p)), "the UDP ports must differ: {ports:?}");
        Ok(Plan {
            netns: netns.clone(),
            local: local.parse().context("LOCAL")?,
            peer: peer.parse().context("PEER")?,
            pings: number("PINGS", pings)?,
            echoes: number("ECHOES", echoes)?,
            ports: ports.into_iter().zip(counts).collect(),
            tcp_port: number("TCP_PORT", tcp_port)?,
            messages: number("MESSAGES", messages)?,
        })
    }
}

/// Three no-operation options and the end of the list: the IP header of
/// every packet sent with them is 24 bytes long (IHL 6), not 20, and the
/// next header starts 4 bytes later.
const NOP_OPTIONS: [u8; 4] = [1, 1, 1, 0];

fn with_ip_options(socket: &impl AsRawFd) -> anyhow::Result<()> {
    let len = NOP_OPTIONS.len() as libc::socklen_t;
    // SAFETY: the option value is a live 4-byte array and len is its size.
    let rc = unsafe {
        libc::setsockopt(socket.as_raw_fd(), libc::IPPROTO_IP, libc::IP_OPTIONS, NOP_OPTIONS.as_ptr().cast(), len)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("failed to set IP options");
    }
    Ok(())
}

/// A raw ICMP socket. The kernel builds the IP header; the ICMP message
/// is ours, checksum included, and every ICMP packet that arrives in the
/// namespace is copied to it, IP header first. (A "ping socket", an ICMP
/// datagram socket, would be simpler, but on the matrix's 5.10 kernel each
/// echo request it sends counts twice in Icmp OutMsgs.)
fn icmp_socket() -> anyhow::Result<UdpSocket> {
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::Icmp)
        .context("failed to open a raw ICMP socket (is this running as root?)")?;
    Ok(UdpSocket::from(fd))
}

/// The Internet checksum (RFC 1071) of an ICMP message.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends `count` echo requests with identifier `id` to `to`.
fn send_pings(socket: &UdpSocket, to: Ipv4Addr, id: u16, count: u16) -> anyhow::Result<()> {
    for seq in 1..=count {
        // type 8 (echo request), code 0, checksum, identifier, sequence
        // number, then a payload.
        let mut packet = vec![8, 0, 0, 0];
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(b"workbook lab 13 ping");
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        socket.send_to(&packet, SocketAddrV4::new(to, 0)).with_context(|| format!("failed to ping {to}"))?;
    }
    Ok(())
}

/// Counts the distinct echo replies to identifier `id` that arrive before
/// the deadline, or until all `expected` have.
fn count_replies(socket: &UdpSocket, id: u16, expected: u16, deadline: Instant) -> anyhow::Result<u16> {
    let mut answered = std::collections::BTreeSet::new();
    let mut buf = [0u8; 512];
    while answered.len() < usize::from(expected) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                let icmp = &buf[ihl.min(n)..n];
                if icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() {
                    answered.insert(u16::from_be_bytes([icmp[6], icmp[7]]));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(e).context("failed to read echo replies"),
        }
    }
    Ok(answered.len() as u16)
}

/// The EtherType of the frames that are not IPv4 (IEEE 802 local
/// experimental), and how many of them the peer sends.
const ETH_P_FOREIGN: u16 = 0x88b5;
const FOREIGN_FRAMES: u32 = 2;

/// Frames of EtherType ETH_P_FOREIGN, broadcast, whose payloads are an
/// IPv4 echo request and an IPv4 UDP datagram to `blocked`, from `peer` to
/// `local`: a program that does not look at the EtherType takes them for
/// IPv4 and drops them.
fn foreign_frames(peer: Ipv4Addr, local: Ipv4Addr, blocked: u16) -> Vec<Vec<u8>> {
    let mut echo = vec![8, 0, 0, 0, 0x13, 0x03, 0, 1];
    echo.extend_from_slice(b"not IPv4 at all");
    let sum = checksum(&echo);
    echo[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut udp = Vec::new();
    udp.extend_from_slice(&9u16.to_be_bytes());
    udp.extend_from_slice(&blocked.to_be_bytes());
    udp.extend_from_slice(&(8u16 + 15).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(b"not IPv4 at all");
    [(1u8, echo), (17u8, udp)]
        .into_iter()
        .map(|(protocol, l4)| {
            let total = (20 + l4.len()) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0, 0, 64, protocol, 0, 0]);
            ip.extend_from_slice(&peer.octets());
            ip.extend_from_slice(&local.octets());
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut frame = vec![0xff; 6];
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0x88, 0xb5]);
            frame.extend_from_slice(&ETH_P_FOREIGN.to_be_bytes());
            frame.extend_from_slice(&ip);
            frame.extend_from_slice(&l4);
            frame
        })
        .collect()
}

/// A packet socket: `protocol` 0 sends only; ETH_P_FOREIGN also receives
/// every frame of that EtherType that arrives in the namespace.
fn packet_socket(protocol: u16) -> anyhow::Result<UdpSocket> {
    // SAFETY: socket() takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(protocol.to_be())) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("failed to open a packet socket");
    }
    // SAFETY: fd is a socket just opened and owned by no one else.
    Ok(UdpSocket::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }))
}

/// Reads every frame of EtherType ETH_P_FOREIGN waiting on the packet
/// socket, waiting at most `grace` for the next one.
fn drain_frames(socket: &UdpSocket, grace: Duration) -> anyhow::Result<u32> {
    socket.set_read_timeout(Some(grace))?;
    let mut buf = [0u8; 256];
    let mut received = 0;
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => received += u32::from(n >= 14 && buf[12..14] == ETH_P_FOREIGN.to_be_bytes()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(received),
            Err(e) => return Err(e).context("failed to read frames from the packet socket"),
        }
    }
}

/// Sends the frames out of the namespace's only interface other than lo.
fn send_foreign(frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let interfaces = nix::net::if_::if_nameindex().context("failed to list the interfaces")?;
    let index = interfaces
        .iter()
        .find(|i| i.name().to_bytes() != b"lo")
        .map(|i| i.index())
        .context("no interface but lo in the peer's namespace")?;
    let socket = packet_socket(0)?;
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_FOREIGN.to_be();
    to.sll_ifindex = index as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    for frame in frames {
        // SAFETY: the frame and the address are live for the call, with their sizes.
        let rc = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("failed to send a frame that is not IPv4");
        }
    }
    Ok(())
}

/// The message number `i` of the TCP exchange.
fn message(i: u32) -> Vec<u8> {
    (0..40 + i % 50).map(|j| b'a' + ((i * 7 + j) % 26) as u8).collect()
}

/// What the peer saw.
struct PeerRecord {
    pings_answered: u16,
    tcp_echoed: u32,
    tcp_error: Option<String>,
}

/// The sending side, in the peer's namespace.
fn peer_side(plan: &Plan) -> anyhow::Result<PeerRecord> {
    let path = ["/run/netns", "/var/run/netns"]
        .iter()
        .map(|dir| format!("{dir}/{}", plan.netns))
        .find(|p| std::path::Path::new(p).exists())
        .with_context(|| format!("no network namespace named {}", plan.netns))?;
    let ns = File::open(&path).with_context(|| format!("failed to open {path}"))?;
    // setns() moves this thread only: sockets it opens from now on belong
    // to the peer's namespace.
    setns(&ns, CloneFlags::CLONE_NEWNET).with_context(|| format!("failed to enter {path}"))?;

    // The pings to be dropped carry IP options, as do half of the UDP
    // datagrams: a program that takes the IP header for 20 bytes long
    // looks for the next header in the wrong place.
    let pinger = icmp_socket()?;
    with_ip_options(&pinger)?;
    send_pings(&pinger, plan.local, PEER_ID, plan.pings)?;

    let open_udp = |port| UdpSocket::bind(SocketAddrV4::new(plan.peer, port)).context("failed to open a UDP socket");
    let (plain, optioned) = (open_udp(0)?, open_udp(0)?);
    with_ip_options(&optioned)?;
    // Sends from the blocked port: a program that drops a datagram whose
    // source port is the blocked one drops these too.
    let from_blocked = open_udp(plan.ports[0].0)?;
    let most = plan.ports.iter().map(|(_, n)| *n).max().unwrap_or(0);
    for round in 0..most {
        for (i, (port, _)) in plan.ports.iter().enumerate().filter(|(_, (_, n))| *n > round) {
            let udp = if i > 0 && round == 0 {
                &from_blocked
            } else if (round as usize + i).is_multiple_of(2) {
                &plain
            } else {
                &optioned
            };
            let payload = format!("datagram {round} to port {port}");
            udp.send_to(payload.as_bytes(), SocketAddrV4::new(plan.local, *port))
                .with_context(|| format!("failed to send to UDP port {port}"))?;
        }
    }

    send_foreign(&foreign_frames(plan.peer, plan.local, plan.ports[0].0))?;

    let (tcp_echoed, tcp_error) = match tcp_exchange(plan) {
        Ok(n) => (n, None),
        Err(e) => (0, Some(format!("{e:#}"))),
    };
    let pings_answered = count_replies(&pinger, PEER_ID, plan.pings, Instant::now() + WAIT)?;
    Ok(PeerRecord { pings_answered, tcp_echoed, tcp_error })
}

/// Sends each message and reads it back; returns how many came back whole.
fn tcp_exchange(plan: &Plan) -> anyhow::Result<u32> {
    let to = SocketAddr::V4(SocketAddrV4::new(plan.local, plan.tcp_port));
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).context("TCP connect failed")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut echoed = 0;
    for i in 0..plan.messages {
        let sent = message(i);
        stream.write_all(&sent).context("TCP send failed")?;
        let mut back = vec![0u8; sent.len()];
        stream.read_exact(&mut back).with_context(|| format!("message {i} did not come back"))?;
        if back == sent {
            echoed += 1;
        }
    }
    // Close this side first and wait for the other's close, so that the
    // last segments have been sent when the program ends.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).context("waiting for the other side's close")?;
    Ok(echoed)
}

/// The receiving side of the TCP exchange: echoes everything until the
/// peer closes.
fn tcp_echo(listener: TcpListener) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("no TCP connection came"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).context("TCP receive failed")?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).context("TCP echo failed")?;
    }
}

/// Reads every datagram waiting on `socket`, waiting at most `grace` for
/// the next one; returns how many arrived, and how many of them came from
/// the source port `from`.
fn drain(socket: &UdpSocket, grace: Duration, from: u16) -> anyhow::Result<(u32, u32)> {
    socket.set_read_timeout(Some(grace))?;
    let mut buf = [0u8; 256];
    let (mut received, mut from_port) = (0, 0);
    loop {
        match socket.recv_from(&mut buf) {
            Ok((_, source)) => {
                received += 1;
                from_port += u32::from(source.port() == from);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok((received, from_port));
            }
            Err(e) => return Err(e).context("UDP receive failed"),
        }
    }
}

/// Sends one datagram from here to `port` of the peer, where nothing
/// listens: true when the peer's ICMP port unreachable came back (the
/// connected socket then reports ECONNREFUSED).
fn refused(plan: &Plan, port: u16) -> anyhow::Result<bool> {
    let socket = UdpSocket::bind(SocketAddrV4::new(plan.local, 0)).context("failed to open a UDP socket")?;
    socket.connect(SocketAddrV4::new(plan.peer, port)).context("failed to connect a UDP socket")?;
    socket.set_read_timeout(Some(WAIT))?;
    socket.send(b"is anyone there?").with_context(|| format!("failed to send to the peer's UDP port {port}"))?;
    let mut buf = [0u8; 64];
    match socket.recv(&mut buf) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
        Err(e) => Err(e).context("UDP receive failed"),
        Ok(_) => bail!("an answer came from the peer's UDP port {port}, where nothing listens"),
    }
}

fn run(plan: &Plan) -> anyhow::Result<String> {
    // Every receiving socket is open before anything is sent.
    let udp: Vec<UdpSocket> = plan
        .ports
        .iter()
        .map(|(port, _)| {
            UdpSocket::bind(SocketAddrV4::new(plan.local, *port)).with_context(|| format!("failed to bind UDP {port}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let listener = TcpListener::bind(SocketAddrV4::new(plan.local, plan.tcp_port))
        .with_context(|| format!("failed to listen on TCP port {}", plan.tcp_port))?;
    let pinger = icmp_socket()?;
    let foreign = packet_socket(ETH_P_FOREIGN)?;

    let (peer, server) = thread::scope(|scope| {
        let server = scope.spawn(move || tcp_echo(listener));
        let peer = scope.spawn(|| peer_side(plan));
        (peer.join(), server.join())
    });
    let peer = peer.map_err(|_| anyhow::anyhow!("the peer's thread panicked"))??;
    let server_error = match server {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some("the TCP server panicked".into()),
    };

    send_pings(&pinger, plan.peer, LOCAL_ID, plan.echoes)?;
    let echoes_answered = count_replies(&pinger, LOCAL_ID, plan.echoes, Instant::now() + 2 * WAIT)?;
    // The peer's thread has ended and closed its sockets: no UDP port is
    // open in its namespace.
    let unreachable_port = plan.ports[0].0;
    let unreachable = refused(plan, unreachable_port)?;

    let foreign_received = drain_frames(&foreign, Duration::from_millis(300))?;
    let mut entries = Vec::new();
    let (mut blocked_received, mut open_lost) = (0, 0);
    let blocked = plan.ports[0].0;
    for (i, (socket, (port, sent))) in udp.iter().zip(&plan.ports).enumerate() {
        let (received, from_blocked) = drain(socket, Duration::from_millis(300), blocked)?;
        if i == 0 {
            blocked_received = received;
        } else {
            open_lost += sent.saturating_sub(received);
        }
        let from_sent = u32::from(i > 0 && *sent > 0);
        eprintln!(
            "udp port {port:>5} ({}): sent {sent:>3}, received {received:>3}{}",
            if i == 0 { "blocked" } else { "open" },
            if i > 0 {
                format!(" (from port {blocked}: sent {from_sent}, received {from_blocked})")
            } else {
                String::new()
            }
        );
        entries.push(format!(
            "{{\"port\": {port}, \"blocked\": {}, \"sent\": {sent}, \"received\": {received}, \"from_blocked\": {{\"sent\": {from_sent}, \"received\": {from_blocked}}}}}",
            i == 0
        ));
    }
    let tcp_error = peer.tcp_error.or(server_error);
    let tcp_ok = tcp_error.is_none() && peer.tcp_echoed == plan.messages;
    eprintln!("frames that are not IPv4: sent {FOREIGN_FRAMES}, received {foreign_received}");
    eprintln!("pings from the peer: sent {}, answered {}", plan.pings, peer.pings_answered);
    eprintln!("pings to the peer:   sent {}, answered {}", plan.echoes, echoes_answered);
    eprintln!(
        "udp to the peer's closed port {unreachable_port}: {}",
        if unreachable { "port unreachable came back" } else { "no port unreachable came back" }
    );
    eprintln!(
        "tcp: {} of {} messages echoed{}",
        peer.tcp_echoed,
        plan.messages,
        match &tcp_error {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        }
    );
    Ok(format!(
        concat!(
            "{{\"peer_pings\": {{\"sent\": {}, \"answered\": {}}},\n",
            " \"echoes\": {{\"sent\": {}, \"answered\": {}, \"lost\": {}}},\n",
            " \"udp\": [{}],\n",
            " \"blocked_received\": {}, \"open_lost\": {},\n",
            " \"tcp\": {{\"messages\": {}, \"echoed\": {}, \"ok\": {}}},\n",
            " \"unreachable\": {{\"port\": {}, \"refused\": {}}},\n",
            " \"not_ipv4\": {{\"sent\": {}, \"received\": {}, \"lost\": {}}}}}"
        ),
        plan.pings,
        peer.pings_answered,
        plan.echoes,
        echoes_answered,
        plan.echoes - echoes_answered,
        entries.join(", "),
        blocked_received,
        open_lost,
        plan.messages,
        peer.tcp_echoed,
        tcp_ok,
        unreachable_port,
        unreachable,
        FOREIGN_FRAMES,
        foreign_received,
        FOREIGN_FRAMES.saturating_sub(foreign_received),
    ))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plan = Plan::parse(&args)?;
    println!("{}", run(&plan)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_checksum_makes_the_message_sum_to_zero() {
        // An echo request as `ping` sends it, checksum field zeroed.
        let mut packet = vec![8, 0, 0, 0, 0x13, 0x02, 0, 1];
        packet.extend_from_slice(b"workbook lab 13 ping!");
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&packet), 0);
        // RFC 1071's example: the one's complement sum of these words is ddf2.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }

    #[test]
    fn the_plan_is_read_from_the_command_line() {
        let plan = Plan::parse(&args("peer 10.13.0.1 10.13.0.2 3 4 5000 6 700 800 900 -- 7 8 9")).unwrap();
        assert_eq!(plan.ports, vec![(700, 7), (800, 8), (900, 9)]);
        assert_eq!((plan.pings, plan.echoes, plan.tcp_port, plan.messages), (3, 4, 5000, 6));
        assert!(Plan::parse(&args("peer 10.13.0.1 10.13.0.2 3 4 5000 6 700 800 -- 7")).is_err());
        assert!(Plan::parse(&args("peer 10.13.0.1 10.13.0.2 3 4 5000 6 700 700 -- 7 8")).is_err());
        assert!(Plan::parse(&args("peer 10.13.0.1 10.13.0.2 3 4 5000 6 700")).is_err());
    }
}
