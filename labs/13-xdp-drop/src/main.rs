//! `xdpcount IFACE PORT`: loads the XDP program with PORT as the UDP port
//! it blocks, attaches it in driver mode to IFACE, and waits; on Ctrl-C
//! (or the grader's SIGINT) it prints how many packets of each IPv4
//! protocol the program counted, summed over the CPUs, and detaches it.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::sync::mpsc;

use anyhow::{Context, bail};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, Xdp, XdpFlags};

mod xdp_count {
    include!(concat!(env!("OUT_DIR"), "/xdp_count.skel.rs"));
}

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [iface, port] = args.as_slice() else { bail!("usage: xdpcount IFACE UDP_PORT_TO_DROP") };
    let port: u16 = port.parse().with_context(|| format!("{port}: not a UDP port"))?;
    let ifindex = nix::net::if_::if_nametoindex(iface.as_str()).with_context(|| format!("no interface {iface}"))?;
    let ifindex = i32::try_from(ifindex).context("interface index out of range")?;

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .context("failed to install the Ctrl-C handler")?;

    let mut storage = MaybeUninit::uninit();
    let mut open =
        xdp_count::XdpCountSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    open.maps.rodata_data.as_deref_mut().context("the BPF object has no .rodata")?.blocked_port = port;
    let skel = open.load().context("failed to load the XDP program (is this running as root?)")?;

    // Driver (native) mode: the program runs inside the veth driver, on the
    // frame before any socket buffer is built for it. Generic mode
    // (SKB_MODE) would run it later, on an skb, for any device.
    let xdp = Xdp::new(skel.progs.xdp_drop_count.as_fd());
    let flags = XdpFlags::DRV_MODE | XdpFlags::UPDATE_IF_NOEXIST;
    xdp.attach(ifindex, flags)
        .with_context(|| format!("failed to attach the XDP program to {iface} in driver mode"))?;
    eprintln!("Attached xdp_drop_count to {iface} (ifindex {ifindex}) in driver mode, dropping UDP port {port}.");

    let _ = stopped.recv();
    let totals = totals(&skel.maps.counts);
    xdp.detach(ifindex, XdpFlags::DRV_MODE)
        .with_context(|| format!("failed to detach the XDP program from {iface}"))?;
    let totals = totals?;
    println!("{:>8} {:<6} {:>8}", "protocol", "name", "packets");
    for (protocol, packets) in totals.iter().enumerate().filter(|(_, n)| **n > 0) {
        println!("{protocol:>8} {:<6} {packets:>8}", name(protocol));
    }
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: totals
/// Every protocol's count, the per-CPU copies added up: a lookup in a
/// per-CPU map returns one value for each possible CPU.
fn totals(counts: &impl MapCore) -> anyhow::Result<Vec<u64>> {
    (0..256u32)
        .map(|protocol| {
            let per_cpu = counts
                .lookup_percpu(&protocol.to_ne_bytes(), MapFlags::ANY)
                .with_context(|| format!("failed to read the counters of protocol {protocol}"))?
                .unwrap_or_default();
            per_cpu
                .iter()
                .map(|value| {
                    let bytes: [u8; 8] = value.as_slice().try_into().context("a counter is not 8 bytes")?;
                    Ok(u64::from_ne_bytes(bytes))
                })
                .sum()
        })
        .collect()
}
// ANCHOR_END: totals

fn name(protocol: usize) -> &'static str {
    match protocol {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        _ => "",
    }
}
