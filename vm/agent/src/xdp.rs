//! The grader's frames for lab 10: seeded Ethernet frames, each with the
//! verdict or record a right program gives it, run through a pinned XDP
//! program with BPF_PROG_TEST_RUN, and the kernel-side results read back
//! (return values, an array map, a ring buffer) with raw bpf() calls.
//!
//! Everything here is the grader's: the student's program only ever sees
//! the frames' bytes, and every answer is read from the kernel.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
/// An EtherType for local experiments: the frames that carry it hold bytes
/// that look like IPv4, for a program that never reads the EtherType.
const ETH_P_LOCAL: u16 = 0x88b5;
const UDP: u8 = 17;
const TCP: u8 = 6;

/// splitmix64: a small generator whose whole state is the seed, so that a
/// seed always gives the same frames.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i as u64) as usize;
            items.swap(i, j);
        }
    }
}

/// One frame and what it is, in words for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub what: String,
    pub bytes: Vec<u8>,
}

/// An Ethernet header: fixed addresses, the given EtherType.
fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut b = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    b.extend_from_slice(&ethertype.to_be_bytes());
    b
}

/// An IPv4 header of `ihl` 32-bit words (options are NOPs) around `l4`.
fn ipv4(ihl: u8, protocol: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let len = ihl as usize * 4 + l4.len();
    let mut b = vec![0x40 | ihl, 0];
    b.extend_from_slice(&(len as u16).to_be_bytes());
    b.extend_from_slice(&[0x12, 0x34, 0x40, 0, ttl, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    b.resize(ihl as usize * 4, 1);
    b.extend_from_slice(l4);
    b
}

/// A UDP header and payload; `len` overrides the length field.
fn udp(sport: u16, dport: u16, payload: &[u8], len: Option<u16>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&len.unwrap_or(8 + payload.len() as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(payload);
    b
}

/// A TCP header (20 bytes, no options) with the ports where UDP has them.
fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    b
}

fn frame(what: impl Into<String>, parts: &[&[u8]]) -> Frame {
    Frame { what: what.into(), bytes: parts.concat() }
}

/// A port other than `avoid`, above the well-known ones.
fn other_port(rng: &mut Rng, avoid: u16) -> u16 {
    loop {
        let p = rng.range(1024, 65535) as u16;
        if p != avoid && p != avoid.swap_bytes() {
            return p;
        }
    }
}

/// A payload of `len` bytes none of which is `banned`.
fn payload_without(rng: &mut Rng, len: usize, banned: u8) -> Vec<u8> {
    (0..len).map(|_| rng.byte()).map(|b| if b == banned { b ^ 0x5a } else { b }).collect()
}

/// drop_port's frames, each with its verdict: DROP only for a whole UDP
/// header, in IPv4, sent to `port`.
pub fn port_frames(port: u16, seed: u64) -> Vec<(Frame, u32)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let sport = |rng: &mut Rng| rng.range(1024, 65535) as u16;
    for _ in 0..rng.range(2, 4) {
        let s = sport(&mut rng);
        let body = {
            let len = rng.range(0, 40) as usize;
            payload_without(&mut rng, len, 0)
        };
        out.push((
            frame(format!("UDP to port {port}"), &[&ethernet(ETH_P_IP), &ipv4(5, UDP, 64, &udp(s, port, &body, None))]),
            XDP_DROP,
        ));
    }
    for _ in 0..rng.range(2, 3) {
        let ihl = rng.range(6, 15) as u8;
        let s = sport(&mut rng);
        out.push((
            frame(
                format!("UDP to port {port} after {} bytes of IP options", (ihl - 5) * 4),
                &[&ethernet(ETH_P_IP), &ipv4(ihl, UDP, 64, &udp(s, port, b"options", None))],
            ),
            XDP_DROP,
        ));
    }
    if port.swap_bytes() != port {
        let s = sport(&mut rng);
        out.push((
            frame(
                format!("UDP to port {} (the bytes of {port} swapped)", port.swap_bytes()),
                &[&ethernet(ETH_P_IP), &ipv4(5, UDP, 64, &udp(s, port.swap_bytes(), b"swap", None))],
            ),
            XDP_PASS,
        ));
    }
    for _ in 0..rng.range(2, 4) {
        let (s, d) = (sport(&mut rng), other_port(&mut rng, port));
        out.push((
            frame(format!("UDP to port {d}"), &[&ethernet(ETH_P_IP), &ipv4(5, UDP, 64, &udp(s, d, b"other", None))]),
            XDP_PASS,
        ));
    }
    let s = sport(&mut rng);
    out.push((
        frame(format!("TCP to port {port}"), &[&ethernet(ETH_P_IP), &ipv4(5, TCP, 64, &tcp(s, port))]),
        XDP_PASS,
    ));
    // Cut short: the frame ends inside the UDP header, after the port.
    let whole = [ethernet(ETH_P_IP), ipv4(5, UDP, 64, &udp(s, port, &[], None))].concat();
    out.push((
        Frame {
            what: format!("UDP to port {port}, the frame cut 4 bytes into the UDP header"),
            bytes: whole[..14 + 20 + 4].to_vec(),
        },
        XDP_PASS,
    ));
    let whole = [ethernet(ETH_P_IP), ipv4(8, UDP, 64, &udp(s, port, &[], None))].concat();
    out.push((
        Frame {
            what: format!("UDP to port {port} after IP options, the frame cut inside the options"),
            bytes: whole[..14 + 24].to_vec(),
        },
        XDP_PASS,
    ));
    out.push((frame("an IPv4 EtherType and no IP header", &[&ethernet(ETH_P_IP)]), XDP_PASS));
    out.push((
        frame(
            format!("EtherType {ETH_P_LOCAL:#06x} carrying the bytes of a UDP datagram to port {port}"),
            &[&ethernet(ETH_P_LOCAL), &ipv4(5, UDP, 64, &udp(s, port, b"not ip", None))],
        ),
        XDP_PASS,
    ));
    rng.shuffle(&mut out);
    out
}

/// find_byte's frames: DROP when `banned` is among the first `limit` bytes
/// of a UDP payload, as long as the UDP length says.
pub fn byte_frames(banned: u8, limit: usize, seed: u64) -> Vec<(Frame, u32)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let ports = |rng: &mut Rng| (rng.range(1024, 65535) as u16, rng.range(1024, 65535) as u16);
    let ip_udp = |ihl: u8, body: Vec<u8>| [ethernet(ETH_P_IP), ipv4(ihl, UDP, 64, &body)].concat();
    for _ in 0..rng.range(3, 5) {
        let len = rng.range(1, 100) as usize;
        let mut body = payload_without(&mut rng, len, banned);
        let at = rng.range(0, (len.min(limit) - 1) as u64) as usize;
        body[at] = banned;
        let (s, d) = ports(&mut rng);
        out.push((
            Frame {
                what: format!("UDP payload of {len} bytes, byte {banned} at offset {at}"),
                bytes: ip_udp(5, udp(s, d, &body, None)),
            },
            XDP_DROP,
        ));
    }
    // The last byte the program must look at, and the first it must not.
    let mut body = payload_without(&mut rng, limit + 20, banned);
    body[limit - 1] = banned;
    let (s, d) = ports(&mut rng);
    out.push((
        Frame {
            what: format!("byte {banned} at offset {}, the last one scanned", limit - 1),
            bytes: ip_udp(5, udp(s, d, &body, None)),
        },
        XDP_DROP,
    ));
    let mut body = payload_without(&mut rng, limit + 20, banned);
    body[limit] = banned;
    body[limit + 10] = banned;
    out.push((
        Frame {
            what: format!("byte {banned} only at offsets {limit} and {}, past the scan", limit + 10),
            bytes: ip_udp(5, udp(s, d, &body, None)),
        },
        XDP_PASS,
    ));
    // The frame's very last byte.
    let len = rng.range(2, (limit - 1) as u64) as usize;
    let mut body = payload_without(&mut rng, len, banned);
    body[len - 1] = banned;
    out.push((
        Frame {
            what: format!("byte {banned} as the frame's last byte, offset {}", len - 1),
            bytes: ip_udp(5, udp(s, d, &body, None)),
        },
        XDP_DROP,
    ));
    let ihl = rng.range(6, 15) as u8;
    let mut body = payload_without(&mut rng, 30, banned);
    body[3] = banned;
    out.push((
        Frame {
            what: format!("byte {banned} at offset 3, after {} bytes of IP options", (ihl - 5) * 4),
            bytes: ip_udp(ihl, udp(s, d, &body, None)),
        },
        XDP_DROP,
    ));
    for _ in 0..rng.range(2, 4) {
        let len = rng.range(0, 100) as usize;
        let body = payload_without(&mut rng, len, banned);
        let (s, d) = ports(&mut rng);
        out.push((
            Frame {
                what: format!("UDP payload of {len} bytes without byte {banned}"),
                bytes: ip_udp(5, udp(s, d, &body, None)),
            },
            XDP_PASS,
        ));
    }
    // The byte in the UDP header (both ports and the length) only.
    let both = u16::from_be_bytes([banned, banned]);
    let body = payload_without(&mut rng, (banned as usize % 40) + 1, banned);
    let mut dgram = udp(both, both, &body, None);
    dgram[4] = 0;
    dgram[5] = 8 + body.len() as u8;
    out.push((
        Frame { what: format!("byte {banned} in the UDP ports only, not in the payload"), bytes: ip_udp(5, dgram) },
        XDP_PASS,
    ));
    // Past the datagram: bytes the UDP length does not cover.
    let body = payload_without(&mut rng, 10, banned);
    let mut bytes = ip_udp(5, udp(s, d, &body, None));
    bytes.extend_from_slice(&[0, banned, 0, 0]);
    out.push((Frame { what: format!("byte {banned} in padding after a 10-byte payload"), bytes }, XDP_PASS));
    let mut body = payload_without(&mut rng, 20, banned);
    body[2] = banned;
    out.push((
        Frame {
            what: format!("TCP, byte {banned} in its payload"),
            bytes: [ethernet(ETH_P_IP), ipv4(5, TCP, 64, &[tcp(s, d), body].concat())].concat(),
        },
        XDP_PASS,
    ));
    rng.shuffle(&mut out);
    out
}

/// count_protos's frames and, per protocol number, how many are IPv4.
pub fn count_frames(seed: u64) -> (Vec<Frame>, [u64; 256]) {
    let mut rng = Rng::new(seed);
    let mut frames = Vec::new();
    let mut counts = [0u64; 256];
    let common = [1u8, 6, 17, 47, 50, 58, 132];
    let extra = rng.byte();
    for _ in 0..rng.range(30, 45) {
        let protocol =
            if rng.range(0, 5) == 0 { extra } else { common[rng.range(0, common.len() as u64 - 1) as usize] };
        let ihl = rng.range(5, 7) as u8;
        let ttl = rng.range(1, 255) as u8;
        let body = {
            let len = rng.range(8, 40) as usize;
            payload_without(&mut rng, len, 0)
        };
        counts[protocol as usize] += 1;
        frames.push(frame(
            format!("IPv4, protocol {protocol}"),
            &[&ethernet(ETH_P_IP), &ipv4(ihl, protocol, ttl, &body)],
        ));
    }
    for _ in 0..rng.range(2, 4) {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, UDP, 64];
        v6.extend((0..32).map(|_| rng.byte()));
        frames.push(frame("IPv6", &[&ethernet(ETH_P_IPV6), &v6, &udp(1, 2, &[], None)]));
    }
    frames.push(frame("ARP", &[&ethernet(ETH_P_ARP), &[0, 1, 8, 0, 6, 4, 0, 1], &[0; 20]]));
    frames.push(frame(
        format!("EtherType {ETH_P_LOCAL:#06x} carrying IPv4-like bytes, protocol {UDP}"),
        &[&ethernet(ETH_P_LOCAL), &ipv4(5, UDP, 64, &[0; 8])],
    ));
    frames.push(Frame {
        what: "IPv4 cut 10 bytes into its header".into(),
        bytes: [ethernet(ETH_P_IP), ipv4(5, TCP, 64, &[])].concat()[..24].to_vec(),
    });
    rng.shuffle(&mut frames);
    (frames, counts)
}

/// sample_frames's frames and, in order, the (protocol, frame length) of
/// each IPv4 one: the samples the ring buffer must hold.
pub fn sample_frames(seed: u64) -> (Vec<Frame>, Vec<(u32, u32)>) {
    let mut rng = Rng::new(seed);
    let mut frames = Vec::new();
    for _ in 0..rng.range(12, 20) {
        let protocol = rng.byte();
        let body = {
            let len = rng.range(0, 60) as usize;
            payload_without(&mut rng, len, 0)
        };
        let mut bytes = [ethernet(ETH_P_IP), ipv4(5, protocol, 64, &body)].concat();
        // Ethernet padding: the frame is longer than the IP packet says.
        let pad = if rng.range(0, 1) == 0 { rng.range(1, 20) as usize } else { 0 };
        bytes.resize(bytes.len() + pad, 0);
        frames.push(Frame { what: format!("IPv4, protocol {protocol}, {} bytes", bytes.len()), bytes });
    }
    for _ in 0..rng.range(3, 6) {
        let kind = rng.range(0, 2);
        frames.push(match kind {
            0 => frame("IPv6", &[&ethernet(ETH_P_IPV6), &[0x60, 0, 0, 0, 0, 0, 59, 64], &[7; 32]]),
            1 => frame("ARP", &[&ethernet(ETH_P_ARP), &[0, 1, 8, 0, 6, 4, 0, 1], &[0; 20]]),
            _ => frame(format!("EtherType {ETH_P_LOCAL:#06x}"), &[&ethernet(ETH_P_LOCAL), &ipv4(5, UDP, 64, &[0; 8])]),
        });
    }
    rng.shuffle(&mut frames);
    let want = frames
        .iter()
        .filter(|f| f.bytes[12..14] == ETH_P_IP.to_be_bytes())
        .map(|f| (f.bytes[14 + 9] as u32, f.bytes.len() as u32))
        .collect();
    (frames, want)
}

// The bpf() calls: command numbers and attr layouts from
// include/uapi/linux/bpf.h.
const BPF_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_OBJ_GET: i32 = 7;
const BPF_PROG_TEST_RUN: i32 = 10;
const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;

fn bpf<A>(cmd: i32, attr: &mut A) -> io::Result<i64> {
    // SAFETY: attr is a live #[repr(C)] bpf_attr member whose size we pass.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, size_of::<A>() as libc::c_uint) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// BPF_OBJ_GET: a descriptor for what is pinned at `path`.
pub fn obj_get(path: &str) -> io::Result<OwnedFd> {
    #[repr(C)]
    #[derive(Default)]
    struct ObjAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let c = CString::new(path).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let mut attr = ObjAttr { pathname: c.as_ptr() as u64, ..Default::default() };
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_PROG_TEST_RUN: runs the program once on `data`; its return value.
pub fn test_run(prog: &OwnedFd, data: &[u8]) -> io::Result<u32> {
    #[repr(C)]
    #[derive(Default)]
    struct TestAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
    }
    let mut attr = TestAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_in: data.as_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.retval)
}

/// An array map's u64 value at `key`.
pub fn lookup_u64(map: &OwnedFd, key: u32) -> io::Result<u64> {
    #[repr(C)]
    #[derive(Default)]
    struct ElemAttr {
        map_fd: u32,
        pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let mut value = 0u64;
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u64 as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
    Ok(value)
}

/// The map's max_entries (a ring buffer's size in bytes).
fn max_entries(map: &OwnedFd) -> io::Result<u32> {
    #[repr(C)]
    #[derive(Default)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    // struct bpf_map_info begins: type, id, key_size, value_size,
    // max_entries; the kernel fills what fits in info_len.
    let mut info = [0u32; 5];
    let mut attr = InfoAttr { bpf_fd: map.as_raw_fd() as u32, info_len: 20, info: info.as_mut_ptr() as u64 };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info[4])
}

/// Every record waiting in a BPF ring buffer, oldest first, read the way
/// libbpf does: the consumer position lives in a page we may write, the
/// producer position and the data (mapped twice, so that a record that
/// wraps reads straight) in pages we may only read.
pub fn ringbuf_records(map: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    const BUSY: u32 = 1 << 31;
    const DISCARD: u32 = 1 << 30;
    let size = max_entries(map)? as usize;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let fd = map.as_raw_fd();
    // SAFETY: mapping the ring buffer's own pages as the kernel lays them
    // out; each mapping is unmapped below before it goes out of scope.
    let (cons, prod) = unsafe {
        let cons = libc::mmap(std::ptr::null_mut(), page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        let prod =
            libc::mmap(std::ptr::null_mut(), page + 2 * size, libc::PROT_READ, libc::MAP_SHARED, fd, page as i64);
        (cons, prod)
    };
    if cons == libc::MAP_FAILED || prod == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut records = Vec::new();
    // SAFETY: positions are u64s at the start of their pages; records lie
    // in the data area, whose double mapping covers any record that wraps.
    unsafe {
        let cons_pos = cons as *mut u64;
        let prod_pos = std::ptr::read_volatile(prod as *const u64);
        let data = (prod as *const u8).add(page);
        let mut at = std::ptr::read_volatile(cons_pos);
        while at < prod_pos {
            let header = data.add(at as usize & (size - 1));
            let len = std::ptr::read_volatile(header as *const u32);
            if len & BUSY != 0 {
                break;
            }
            let body = (len & !(BUSY | DISCARD)) as usize;
            if len & DISCARD == 0 {
                records.push(std::slice::from_raw_parts(header.add(8), body).to_vec());
            }
            at += (body as u64 + 8 + 7) & !7;
            std::ptr::write_volatile(cons_pos, at);
        }
        libc::munmap(cons, page);
        libc::munmap(prod, page + 2 * size);
    }
    Ok(records)
}

fn verdict_name(v: u32) -> String {
    match v {
        0 => "aborted".into(),
        XDP_DROP => "drop".into(),
        XDP_PASS => "pass".into(),
        3 => "tx".into(),
        4 => "redirect".into(),
        n => format!("{n}"),
    }
}

/// Runs `frames` through the program pinned at `prog`, printing each one's
/// verdict against the wanted one; Err when any differs.
fn verdicts(prog: &str, frames: &[(Frame, u32)]) -> Result<(), String> {
    let fd = obj_get(prog).map_err(|e| format!("no program pinned at {prog} ({e}): it did not load"))?;
    let mut wrong = 0;
    for (i, (frame, want)) in frames.iter().enumerate() {
        let got = test_run(&fd, &frame.bytes).map_err(|e| format!("BPF_PROG_TEST_RUN on frame {i}: {e}"))?;
        let mark = if got == *want { "right" } else { "WRONG" };
        wrong += usize::from(got != *want);
        println!(
            "frame {i:2} ({} bytes) {}: want {}, got {} - {mark}",
            frame.bytes.len(),
            frame.what,
            verdict_name(*want),
            verdict_name(got)
        );
    }
    println!("{} of {} frames right", frames.len() - wrong, frames.len());
    if wrong > 0 { Err(format!("{wrong} of {} frames got the wrong verdict", frames.len())) } else { Ok(()) }
}

fn counts(prog: &str, map: &str, seed: u64) -> Result<(), String> {
    let fd = obj_get(prog).map_err(|e| format!("no program pinned at {prog} ({e}): it did not load"))?;
    let (frames, want) = count_frames(seed);
    for (i, frame) in frames.iter().enumerate() {
        let got = test_run(&fd, &frame.bytes).map_err(|e| format!("BPF_PROG_TEST_RUN on frame {i}: {e}"))?;
        println!("frame {i:2} ({} bytes) {}: returned {}", frame.bytes.len(), frame.what, verdict_name(got));
    }
    let map = obj_get(map).map_err(|e| format!("no map pinned at {map} ({e})"))?;
    let mut wrong = 0;
    for key in 0..256u32 {
        let got = lookup_u64(&map, key).map_err(|e| format!("looking up protocol {key}: {e}"))?;
        let want = want[key as usize];
        if got != 0 || want != 0 {
            let mark = if got == want { "right" } else { "WRONG" };
            wrong += usize::from(got != want);
            println!("protocol {key:3}: want {want}, counted {got} - {mark}");
        }
    }
    if wrong > 0 { Err(format!("{wrong} protocols counted wrong")) } else { Ok(()) }
}

fn samples(prog: &str, map: &str, seed: u64) -> Result<(), String> {
    let fd = obj_get(prog).map_err(|e| format!("no program pinned at {prog} ({e}): it did not load"))?;
    let (frames, want) = sample_frames(seed);
    for (i, frame) in frames.iter().enumerate() {
        test_run(&fd, &frame.bytes).map_err(|e| format!("BPF_PROG_TEST_RUN on frame {i}: {e}"))?;
        println!("frame {i:2}: {}", frame.what);
    }
    let map = obj_get(map).map_err(|e| format!("no map pinned at {map} ({e})"))?;
    let records = ringbuf_records(&map).map_err(|e| format!("reading the ring buffer: {e}"))?;
    let got: Vec<Option<(u32, u32)>> = records
        .iter()
        .map(|r| {
            (r.len() >= 8).then(|| {
                (u32::from_ne_bytes(r[0..4].try_into().unwrap()), u32::from_ne_bytes(r[4..8].try_into().unwrap()))
            })
        })
        .collect();
    let mut wrong = 0;
    #[allow(clippy::needless_range_loop)] // want, got and records, side by side
    for i in 0..want.len().max(got.len()) {
        let w = want.get(i).map_or("nothing".to_string(), |(p, l)| format!("protocol {p}, {l} bytes"));
        let g = match got.get(i) {
            None => "nothing".to_string(),
            Some(None) => format!("a record of {} bytes, not 8", records[i].len()),
            Some(Some((p, l))) => format!("protocol {p}, {l} bytes"),
        };
        let ok = want.get(i).copied() == got.get(i).copied().flatten();
        wrong += usize::from(!ok);
        println!("sample {i:2}: want {w}, got {g} - {}", if ok { "right" } else { "WRONG" });
    }
    println!("{} IPv4 frames, {} samples", want.len(), got.len());
    if wrong > 0 { Err(format!("{wrong} samples wrong or missing")) } else { Ok(()) }
}

/// `wb-workload xdp JOB PROG_PIN ...`: the four jobs of lab 10.
pub fn run(args: &[String]) -> Result<(), String> {
    let num = |s: &String, what: &str| s.parse::<u64>().map_err(|_| format!("{what} {s:?} is not a number"));
    match args {
        [job, prog, port, seed] if job == "port" => {
            let port = u16::try_from(num(port, "PORT")?).map_err(|_| "PORT is above 65535".to_string())?;
            verdicts(prog, &port_frames(port, num(seed, "SEED")?))
        }
        [job, prog, byte, seed] if job == "byte" => {
            let byte = u8::try_from(num(byte, "BYTE")?).map_err(|_| "BYTE is above 255".to_string())?;
            verdicts(prog, &byte_frames(byte, 64, num(seed, "SEED")?))
        }
        [job, prog, map, seed] if job == "count" => counts(prog, map, num(seed, "SEED")?),
        [job, prog, map, seed] if job == "sample" => samples(prog, map, num(seed, "SEED")?),
        _ => Err(
            "xdp port PROG PORT SEED | xdp byte PROG BYTE SEED | xdp count PROG MAP SEED | xdp sample PROG MAP SEED"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_headers_they_claim() {
        let b = [ethernet(ETH_P_IP), ipv4(6, UDP, 9, &udp(1, 4242, b"abc", None))].concat();
        assert_eq!(&b[12..14], &[0x08, 0x00]);
        assert_eq!(b[14], 0x46);
        assert_eq!(u16::from_be_bytes([b[16], b[17]]) as usize, b.len() - 14);
        assert_eq!((b[14 + 8], b[14 + 9]), (9, UDP));
        let udp_at = 14 + 24;
        assert_eq!(u16::from_be_bytes([b[udp_at + 2], b[udp_at + 3]]), 4242);
        assert_eq!(u16::from_be_bytes([b[udp_at + 4], b[udp_at + 5]]), 11);
    }

    #[test]
    fn a_seed_gives_the_same_frames_and_another_seed_others() {
        assert_eq!(port_frames(4242, 7), port_frames(4242, 7));
        assert_ne!(port_frames(4242, 7), port_frames(4242, 8));
        assert_eq!(byte_frames(200, 64, 3), byte_frames(200, 64, 3));
    }

    /// What a right drop_port decides, written out again from the bytes.
    fn drops_port(bytes: &[u8], port: u16) -> bool {
        if bytes.len() < 34 || bytes[12..14] != [8, 0] || bytes[23] != UDP {
            return false;
        }
        let at = 14 + (bytes[14] & 0xf) as usize * 4;
        bytes.len() >= at + 8 && u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) == port
    }

    #[test]
    fn port_verdicts_follow_the_bytes_and_cover_both() {
        let frames = port_frames(0x1234, 11);
        for (f, want) in &frames {
            assert_eq!(drops_port(&f.bytes, 0x1234), *want == XDP_DROP, "{}", f.what);
        }
        assert!(frames.iter().any(|(_, v)| *v == XDP_DROP) && frames.iter().any(|(_, v)| *v == XDP_PASS));
        assert!(frames.iter().any(|(f, _)| f.what.contains("swapped")));
    }

    #[test]
    fn byte_verdicts_follow_the_bytes() {
        for seed in 0..20 {
            for (f, want) in byte_frames(0xab, 64, seed) {
                let b = &f.bytes;
                let is_udp = b[23] == UDP;
                let at = 14 + (b[14] & 0xf) as usize * 4;
                let len = if is_udp { u16::from_be_bytes([b[at + 4], b[at + 5]]) as usize - 8 } else { 0 };
                let scanned = &b[(at + 8).min(b.len())..(at + 8 + len.min(64)).min(b.len())];
                assert_eq!(is_udp && scanned.contains(&0xab), want == XDP_DROP, "seed {seed}: {}", f.what);
            }
        }
    }

    #[test]
    fn counts_and_samples_are_of_the_ipv4_frames_only() {
        let (frames, counts) = count_frames(5);
        let ipv4 = frames.iter().filter(|f| f.bytes.len() >= 34 && f.bytes[12..14] == [8, 0]).count() as u64;
        assert_eq!(counts.iter().sum::<u64>(), ipv4);
        assert!(frames.len() as u64 > ipv4);
        let (frames, want) = sample_frames(5);
        assert!(want.len() < frames.len());
        assert!(want.iter().any(|&(_, len)| {
            frames.iter().any(|f| {
                f.bytes.len() as u32 == len && u16::from_be_bytes([f.bytes[16], f.bytes[17]]) as u32 + 14 != len
            })
        }));
    }
}
