//! `udp-probe SEED NETNS --allow="PORT ..." --range LO HI --counts PIN`:
//! the grader's traffic (given; not part of the exercise).
//!
//! The firewall sits on wbfw0, this namespace's end of a veth pair whose
//! other end is in the network namespace NETNS (`ip netns add`). The probe
//! opens its receiving sockets on both sides, then sends UDP datagrams both
//! ways: out of wbfw0 (its egress hook) to ports of the peer, and from the
//! peer into wbfw0 (its ingress hook) to ports of this side. Which ports,
//! and how many datagrams each, are drawn from SEED; among them are both
//! ends of the allowed range and the ports just outside it, ports of the
//! allowed list, and ports that nothing allows. Each port nothing allows
//! also gets a datagram from a source port that is allowed (the rule is on
//! the destination port). The datagrams coming in carry IP options, so
//! their IP header is longer than 20 bytes. Then a TCP connection each way
//! to a port nothing allows and a ping through wbfw0: the firewall is for
//! UDP, and every other packet must pass untouched and uncounted.
//!
//! What arrived at the probe's own sockets is the ground truth: a datagram
//! to an allowed port must arrive, one to any other port must not. Then the
//! probe reads the pinned `counts` map and holds it against what it sent:
//! one datagram is one packet, so the counts are exact. It prints one line
//! per port and one verdict line per property, which the checks read.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

/// This side of the veth pair (wbfw0, where the firewall is) and the peer.
const HERE: Ipv4Addr = Ipv4Addr::new(10, 14, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 14, 0, 2);
/// Marks the probe's own datagrams.
const MAGIC: &[u8; 8] = b"wblab14!";

/// splitmix64: a small generator, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An integer in lo..=hi.
    fn range(&mut self, lo: u16, hi: u16) -> u16 {
        lo + (self.next() % (u64::from(hi - lo) + 1)) as u16
    }
}

#[derive(Debug)]
struct Config {
    seed: u64,
    netns: String,
    allow: Vec<u16>,
    range: (u16, u16),
    counts: String,
}

fn parse(args: &[String]) -> anyhow::Result<Config> {
    let usage = "usage: udp-probe SEED NETNS --allow=\"PORT ...\" --range LO HI --counts PIN";
    let [seed, netns, rest @ ..] = args else { bail!(usage) };
    let mut c = Config {
        seed: seed.parse().context("SEED")?,
        netns: netns.clone(),
        allow: vec![],
        range: (1, 0),
        counts: String::new(),
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        if let Some(list) = flag.strip_prefix("--allow=") {
            c.allow = list.split([' ', ',']).filter(|w| !w.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
        } else if flag == "--range" {
            let (Some(lo), Some(hi)) = (rest.next(), rest.next()) else { bail!(usage) };
            c.range = (lo.parse()?, hi.parse()?);
        } else if flag == "--counts" {
            c.counts = rest.next().context(usage)?.clone();
        } else {
            bail!("unknown option {flag}: {usage}");
        }
    }
    if c.allow.len() < 4 || c.range.0 + 2 > c.range.1 || c.counts.is_empty() {
        bail!("the probe needs 4 allowed ports, a range of at least 3 and the counts pin: {usage}");
    }
    Ok(c)
}

impl Config {
    fn allowed(&self, port: u16) -> bool {
        (self.range.0..=self.range.1).contains(&port) || self.allow.contains(&port)
    }
}

/// One port probed in one direction.
struct Probe {
    /// true: out of wbfw0 (egress); false: into wbfw0 (ingress).
    egress: bool,
    port: u16,
    sent: u64,
    arrived: u64,
    receiver: UdpSocket,
}

impl Probe {
    fn direction(&self) -> &'static str {
        if self.egress { "egress" } else { "ingress" }
    }
}

/// The ports each way and the senders' source ports.
struct Plan {
    egress: Vec<u16>,
    ingress: Vec<u16>,
    /// The source port of most datagrams: one nothing allows.
    source: u16,
    /// An allowed port, free on this side: the source port of one more
    /// datagram to each egress port nothing allows.
    egress_allowed_source: u16,
    /// The same on the peer's side, for the ingress ports.
    ingress_allowed_source: u16,
    /// TCP ports nothing allows (were they UDP): the peer's listener, to
    /// which this side connects (egress), and this side's (ingress).
    tcp_egress: u16,
    tcp_ingress: u16,
}

/// The ports each way: the range's ends and the ports just past them, the
/// allowed list, a port inside the range, and ports no rule allows.
fn plan(c: &Config, rng: &mut Rng) -> Plan {
    let (lo, hi) = c.range;
    let mut taken: Vec<u16> = vec![];
    let denied = |rng: &mut Rng, taken: &mut Vec<u16>| loop {
        let p = rng.range(1024, 60999);
        if !c.allowed(p) && !taken.contains(&p) && !c.allowed(p.swap_bytes()) {
            taken.push(p);
            return p;
        }
    };
    let mut egress = vec![c.allow[0], c.allow[1], lo, hi + 1];
    let mut ingress = vec![c.allow[2], c.allow[3], hi, lo - 1, rng.range(lo + 1, hi - 1)];
    taken.extend(egress.iter().chain(&ingress));
    for _ in 0..2 {
        egress.push(denied(rng, &mut taken));
        ingress.push(denied(rng, &mut taken));
    }
    // The senders' own port: one nothing allows, outside the range the
    // kernel picks ephemeral ports from.
    let source = loop {
        let p = rng.range(61000, 65000);
        if !c.allowed(p) {
            break p;
        }
    };
    // An allowed port (of the list or the range) that no receiver holds on
    // the sender's side: egress sends from this side, where the ingress
    // ports are bound, and ingress from the peer's.
    let allowed_source = |rng: &mut Rng, bound: &[u16]| loop {
        let p = if rng.next().is_multiple_of(2) {
            c.allow[(rng.next() % c.allow.len() as u64) as usize]
        } else {
            rng.range(lo, hi)
        };
        if !bound.contains(&p) {
            return p;
        }
    };
    let egress_allowed_source = allowed_source(rng, &ingress);
    let ingress_allowed_source = allowed_source(rng, &egress);
    let tcp_egress = denied(rng, &mut taken);
    let tcp_ingress = denied(rng, &mut taken);
    Plan { egress, ingress, source, egress_allowed_source, ingress_allowed_source, tcp_egress, tcp_ingress }
}

fn enter_netns(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let ns = File::open(&path).with_context(|| format!("opening {path} (made by `ip netns add {name}`)"))?;
    set_netns(&ns, &path)
}

fn set_netns(ns: &File, path: &str) -> anyhow::Result<()> {
    // SAFETY: a valid namespace file descriptor; this process has one thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A TCP connection to `to`, made in the current network namespace.
fn tcp_connect(to: SocketAddrV4) -> Result<(), String> {
    TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(2)).map(drop).map_err(|e| e.to_string())
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One ICMP echo request to `to` (a raw socket): whether its reply came.
fn ping(to: Ipv4Addr, id: u16) -> anyhow::Result<bool> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        bail!("socket(SOCK_RAW, IPPROTO_ICMP): {}", std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by socket(2), owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut echo = [0u8; 16];
    echo[0] = 8;
    echo[4..6].copy_from_slice(&id.to_be_bytes());
    echo[6..8].copy_from_slice(&1u16.to_be_bytes());
    echo[8..].copy_from_slice(MAGIC);
    let sum = checksum(&echo);
    echo[2..4].copy_from_slice(&sum.to_be_bytes());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(to.octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid socket, a buffer and an address whose lengths are passed.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            echo.as_ptr().cast(),
            echo.len(),
            0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        bail!("sending an echo request to {to}: {}", std::io::Error::last_os_error());
    }
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(2) {
        // SAFETY: a valid socket and a buffer whose length is passed.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = n as usize;
        let ihl = usize::from(buf[0] & 0xf) * 4;
        if n >= ihl + 8 && buf[12..16] == to.octets() && buf[ihl] == 0 && buf[ihl + 4..ihl + 6] == id.to_be_bytes() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Four no-operation options: an IP header of 24 bytes (IHL 6).
fn with_ip_options(socket: &UdpSocket) -> anyhow::Result<()> {
    let options = [1u8; 4];
    // SAFETY: a valid socket and a 4-byte buffer whose length is passed.
    let rc =
        unsafe { libc::setsockopt(socket.as_raw_fd(), libc::IPPROTO_IP, libc::IP_OPTIONS, options.as_ptr().cast(), 4) };
    if rc != 0 {
        bail!("setsockopt(IP_OPTIONS): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn receiver(ip: Ipv4Addr, port: u16) -> anyhow::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddrV4::new(ip, port)).with_context(|| format!("binding {ip}:{port}"))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Reads every datagram waiting on the probe's sockets.
fn drain(probes: &mut [Probe]) {
    let mut buf = [0u8; 64];
    for p in probes {
        while let Ok(n) = p.receiver.recv(&mut buf) {
            if n >= MAGIC.len() + 2 && &buf[..MAGIC.len()] == MAGIC {
                p.arrived += 1;
            }
        }
    }
}

/// The pinned `counts` map: port (host byte order) to (passed, dropped).
fn read_counts(pin: &str) -> anyhow::Result<BTreeMap<u16, (u64, u64)>> {
    let map = MapHandle::from_pinned_path(pin).with_context(|| format!("opening the pinned map {pin}"))?;
    let mut counts = BTreeMap::new();
    for key in map.keys() {
        let Some(value) = map.lookup(&key, MapFlags::ANY)? else { continue };
        if key.len() != 2 || value.len() != 16 {
            bail!("{pin}: a key of {} bytes and a value of {} bytes, not 2 and 16", key.len(), value.len());
        }
        let port = u16::from_ne_bytes([key[0], key[1]]);
        let word = |i: usize| u64::from_ne_bytes(value[i..i + 8].try_into().expect("8 bytes"));
        counts.insert(port, (word(0), word(8)));
    }
    Ok(counts)
}

fn run(c: &Config) -> anyhow::Result<bool> {
    let mut rng = Rng(c.seed ^ 0x7c5f_1a3b_0014_0014);
    let Plan { egress, ingress, source, egress_allowed_source, ingress_allowed_source, tcp_egress, tcp_ingress } =
        plan(c, &mut rng);
    println!(
        "source ports: {source} (nothing allows it); to the ports nothing allows, one datagram more from {egress_allowed_source} (egress) and {ingress_allowed_source} (ingress), allowed as destinations"
    );

    // This side: the receivers for ingress, the sender for egress.
    let mut probes = vec![];
    for &port in &ingress {
        probes.push(Probe { egress: false, port, sent: 0, arrived: 0, receiver: receiver(HERE, port)? });
    }
    let out = UdpSocket::bind(SocketAddrV4::new(HERE, source)).context("binding the egress sender")?;
    let out_allowed = UdpSocket::bind(SocketAddrV4::new(HERE, egress_allowed_source))
        .context("binding the egress sender from an allowed port")?;
    let tcp_here = TcpListener::bind(SocketAddrV4::new(HERE, tcp_ingress)).context("binding a TCP listener")?;
    let root_ns = File::open("/proc/self/ns/net").context("opening /proc/self/ns/net")?;
    // The peer's side: sockets keep the namespace they were made in.
    enter_netns(&c.netns)?;
    let tcp_peer = TcpListener::bind(SocketAddrV4::new(PEER, tcp_egress)).context("binding a TCP listener")?;
    for &port in &egress {
        probes.push(Probe { egress: true, port, sent: 0, arrived: 0, receiver: receiver(PEER, port)? });
    }
    let inb = UdpSocket::bind(SocketAddrV4::new(PEER, source)).context("binding the ingress sender")?;
    with_ip_options(&inb)?;
    let inb_allowed = UdpSocket::bind(SocketAddrV4::new(PEER, ingress_allowed_source))
        .context("binding the ingress sender from an allowed port")?;
    with_ip_options(&inb_allowed)?;

    // The datagrams, interleaved: 1 to 3 per port, and one more from an
    // allowed source port to each port nothing allows, in a seeded order.
    let mut queue = vec![];
    for (i, p) in probes.iter().enumerate() {
        for _ in 0..rng.range(1, 3) {
            queue.push((i, false));
        }
        if !c.allowed(p.port) {
            queue.push((i, true));
        }
    }
    for i in (1..queue.len()).rev() {
        queue.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    for (seq, &(i, from_allowed)) in queue.iter().enumerate() {
        let p = &mut probes[i];
        let (socket, to) = match (p.egress, from_allowed) {
            (true, false) => (&out, PEER),
            (true, true) => (&out_allowed, PEER),
            (false, false) => (&inb, HERE),
            (false, true) => (&inb_allowed, HERE),
        };
        let mut payload = MAGIC.to_vec();
        payload.extend_from_slice(&(seq as u16).to_be_bytes());
        socket
            .send_to(&payload, SocketAddrV4::new(to, p.port))
            .with_context(|| format!("sending to port {}", p.port))?;
        p.sent += 1;
    }

    // Wait for what should arrive, then a little longer for what should not.
    let expected: u64 = probes.iter().filter(|p| c.allowed(p.port)).map(|p| p.sent).sum();
    let start = Instant::now();
    loop {
        drain(&mut probes);
        let arrived: u64 = probes.iter().map(|p| p.arrived).sum();
        if arrived >= expected || start.elapsed() > Duration::from_secs(3) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    drain(&mut probes);

    // Not UDP: TCP both ways (the listeners complete the handshakes) and a
    // ping, all of which must pass the firewall.
    let mut not_udp = true;
    let mut report = |what: String, result: Result<(), String>| match result {
        Ok(()) => println!("{what}: ok"),
        Err(e) => {
            not_udp = false;
            println!("{what}: WRONG: {e}");
        }
    };
    report(format!("tcp ingress {PEER} -> {HERE}:{tcp_ingress}"), tcp_connect(SocketAddrV4::new(HERE, tcp_ingress)));
    set_netns(&root_ns, "/proc/self/ns/net")?;
    report(format!("tcp egress {HERE} -> {PEER}:{tcp_egress}"), tcp_connect(SocketAddrV4::new(PEER, tcp_egress)));
    let replied = ping(PEER, (c.seed as u16) | 1)?;
    report(
        format!("icmp echo {HERE} -> {PEER} (egress) and its reply (ingress)"),
        if replied { Ok(()) } else { Err("no reply".into()) },
    );
    drop((tcp_here, tcp_peer));

    let counts = read_counts(&c.counts)?;
    let (mut through, mut blocked_out, mut blocked_in, mut counted) = (true, true, true, true);
    println!(
        "{:<8} {:>5}  {:<7}  {:>4} {:>7}  {:>6} {:>7}",
        "hook", "port", "rule", "sent", "arrived", "passed", "dropped"
    );
    for p in &probes {
        let allowed = c.allowed(p.port);
        let (passed, dropped) = counts.get(&p.port).copied().unwrap_or((0, 0));
        let want_counts = if allowed { (p.sent, 0) } else { (0, p.sent) };
        let mut wrong = vec![];
        if allowed && p.arrived != p.sent {
            through = false;
            wrong.push("an allowed datagram did not arrive");
        }
        if !allowed && p.arrived != 0 {
            if p.egress {
                blocked_out = false;
            } else {
                blocked_in = false;
            }
            wrong.push("a blocked datagram arrived");
        }
        if (passed, dropped) != want_counts {
            counted = false;
            wrong.push("wrong counts");
        }
        println!(
            "{:<8} {:>5}  {:<7}  {:>4} {:>7}  {:>6} {:>7}  {}",
            p.direction(),
            p.port,
            if allowed { "allow" } else { "drop" },
            p.sent,
            p.arrived,
            passed,
            dropped,
            if wrong.is_empty() { "ok".to_string() } else { format!("WRONG: {}", wrong.join(", ")) }
        );
    }
    for (port, (passed, dropped)) in &counts {
        if !probes.iter().any(|p| p.port == *port) {
            counted = false;
            println!(
                "counts has port {port} (passed {passed}, dropped {dropped}), to which the probe sent no UDP: WRONG"
            );
        }
    }
    let verdict = |ok: bool| if ok { "ok" } else { "WRONG" };
    println!("verdict allowed-through: {}", verdict(through));
    println!("verdict egress-blocked: {}", verdict(blocked_out));
    println!("verdict ingress-blocked: {}", verdict(blocked_in));
    println!("verdict counts: {}", verdict(counted));
    println!("verdict not-udp: {}", verdict(not_udp));
    Ok(through && blocked_out && blocked_in && counted && not_udp)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(|c| run(&c)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("udp-probe: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            seed: 7,
            netns: "x".into(),
            allow: vec![20001, 21002, 22003, 23004],
            range: (30010, 30020),
            counts: "/x".into(),
        }
    }

    #[test]
    fn the_plan_probes_each_edge_once_and_distinct_ports() {
        let c = config();
        for seed in 0..200 {
            let Plan {
                egress: e,
                ingress: i,
                source,
                egress_allowed_source: es,
                ingress_allowed_source: is,
                tcp_egress: te,
                tcp_ingress: ti,
            } = plan(&c, &mut Rng(seed));
            assert!(c.allowed(es) && !i.contains(&es) && c.allowed(is) && !e.contains(&is));
            assert!(!c.allowed(te) && !c.allowed(ti) && te != ti && !e.contains(&te) && !i.contains(&ti));
            let mut all: Vec<u16> = e.iter().chain(&i).copied().collect();
            assert!(all.contains(&30009) && all.contains(&30010) && all.contains(&30020) && all.contains(&30021));
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), e.len() + i.len());
            assert!(!c.allowed(source) && !all.contains(&source));
            assert_eq!(e.iter().filter(|p| !c.allowed(**p)).count(), 3);
            assert_eq!(i.iter().filter(|p| !c.allowed(**p)).count(), 3);
        }
    }
}
