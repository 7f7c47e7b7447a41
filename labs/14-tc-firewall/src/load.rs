//! Given: the command line, loading the program with its settings, filling
//! the allowed ports in and pinning the counts; attaching is `attach`'s.

use std::ffi::CString;
use std::fs;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use libbpf_rs::MapCore;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

mod tc_firewall {
    include!(concat!(env!("OUT_DIR"), "/tc_firewall.skel.rs"));
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub iface: String,
    pub pin_dir: PathBuf,
    /// The ports allowed one by one (the `allowed` map).
    pub allow: Vec<u16>,
    /// The range of ports allowed, both ends included.
    pub range: (u16, u16),
}

fn port(text: &str) -> anyhow::Result<u16> {
    text.parse().with_context(|| format!("{text:?} is not a port (0 to 65535)"))
}

impl Request {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let usage = "usage: tc-firewall IFACE PIN_DIR --allow=\"PORT PORT ...\" --range LO HI";
        let [iface, pin_dir, rest @ ..] = args else { bail!(usage) };
        let mut request = Request { iface: iface.clone(), pin_dir: pin_dir.into(), allow: vec![], range: (1, 0) };
        let mut rest = rest.iter();
        while let Some(flag) = rest.next() {
            if let Some(list) = flag.strip_prefix("--allow=") {
                request.allow = list.split([' ', ',']).filter(|w| !w.is_empty()).map(port).collect::<Result<_, _>>()?;
            } else if flag == "--range" {
                let (Some(lo), Some(hi)) = (rest.next(), rest.next()) else { bail!("--range needs LO and HI") };
                request.range = (port(lo)?, port(hi)?);
            } else {
                bail!("unknown option {flag}: {usage}");
            }
        }
        Ok(request)
    }
}

/// The interface's index, which TC hooks are addressed by.
fn ifindex(name: &str) -> anyhow::Result<i32> {
    let c = CString::new(name).context("a NUL in the interface name")?;
    // SAFETY: a valid C string; the call only reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        bail!("no interface {name}: {}", std::io::Error::last_os_error());
    }
    Ok(index as i32)
}

// ANCHOR: load
/// Opens the object, sets the range in `.rodata`, loads it (the verifier
/// runs here), fills `allowed`, pins `counts` and attaches the program.
pub fn load_and_attach(request: &Request) -> anyhow::Result<()> {
    let ifindex = ifindex(&request.iface)?;
    let mut storage = MaybeUninit::uninit();
    let mut open = tc_firewall::TcFirewallSkelBuilder::default().open(&mut storage)?;
    let rodata = open.maps.rodata_data.as_deref_mut().context("the object has no .rodata")?;
    (rodata.range_lo, rodata.range_hi) = request.range;
    let mut skel = open.load().context("the verifier rejected tc_firewall (its log is above)")?;
    for port in &request.allow {
        skel.maps.allowed.update(&port.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY)?;
    }
    let dir = &request.pin_dir;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let counts_pin = dir.join("counts");
    unpin(&counts_pin)?;
    skel.maps.counts.pin(&counts_pin).with_context(|| format!("pinning the counts at {}", counts_pin.display()))?;
    attach::attach(skel.progs.tc_firewall.as_fd(), ifindex)
        .with_context(|| format!("attaching tc_firewall to {}", request.iface))?;
    println!(
        "tc_firewall loaded: ports {}..={} and {:?} allowed, counts pinned at {}; attached to {} (ifindex {ifindex})",
        request.range.0,
        request.range.1,
        request.allow,
        counts_pin.display(),
        request.iface
    );
    Ok(())
}
// ANCHOR_END: load

use crate::attach;

/// Removes an earlier pin, so that pinning again does not fail with EEXIST.
fn unpin(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing the old pin {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_command_line_gives_the_ports() {
        let r = Request::parse(&args(&["wbfw0", "/x", "--allow=20001 29999", "--range", "30001", "35000"])).unwrap();
        assert_eq!((r.iface.as_str(), r.allow, r.range), ("wbfw0", vec![20001, 29999], (30001, 35000)));
        assert!(Request::parse(&args(&["wbfw0", "/x", "--allow=70000"])).is_err());
        assert!(Request::parse(&args(&["wbfw0", "/x", "--range", "1"])).unwrap_err().to_string().contains("LO and HI"));
        assert!(Request::parse(&args(&["wbfw0"])).is_err());
    }
}
