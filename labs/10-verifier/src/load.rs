//! Loading and pinning each of the four programs.

use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

mod count_protos {
    include!(concat!(env!("OUT_DIR"), "/count_protos.skel.rs"));
}
mod drop_port {
    include!(concat!(env!("OUT_DIR"), "/drop_port.skel.rs"));
}
mod find_byte {
    include!(concat!(env!("OUT_DIR"), "/find_byte.skel.rs"));
}
mod sample_frames {
    include!(concat!(env!("OUT_DIR"), "/sample_frames.skel.rs"));
}

/// The programs, by the name of their function (and object).
pub const PROGRAMS: [&str; 4] = ["count_protos", "drop_port", "find_byte", "sample_frames"];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub program: String,
    pub pin_dir: PathBuf,
    /// drop_port's port.
    pub port: u16,
    /// find_byte's banned byte.
    pub byte: u8,
}

impl Request {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let usage =
            || format!("usage: verifier-lab PROGRAM PIN_DIR [--port N] [--byte N]; PROGRAM is one of {PROGRAMS:?}");
        let [program, pin_dir, rest @ ..] = args else { bail!(usage()) };
        if !PROGRAMS.contains(&program.as_str()) {
            bail!("no program {program:?}: {}", usage());
        }
        let mut request = Request { program: program.clone(), pin_dir: pin_dir.into(), port: 0, byte: 0 };
        let mut rest = rest.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--port" => request.port = value.parse().with_context(|| format!("--port {value}: not a port"))?,
                "--byte" => request.byte = value.parse().with_context(|| format!("--byte {value}: not 0 to 255"))?,
                _ => bail!("unknown option {flag}: {}", usage()),
            }
        }
        Ok(request)
    }
}

/// Removes an earlier pin, so that pinning again does not fail with EEXIST.
fn unpin(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing the old pin {}", path.display()))
        }
        _ => Ok(()),
    }
}

// ANCHOR: load
/// Opens, loads and pins the program `request` names. A program the verifier
/// rejects fails here, in `load()`, with libbpf's copy of the verifier log
/// already on stderr.
pub fn load_and_pin(request: &Request) -> anyhow::Result<()> {
    let dir = &request.pin_dir;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let prog_pin = dir.join(&request.program);
    unpin(&prog_pin)?;
    let loading = || format!("the verifier rejected {} (its log is above)", request.program);
    let mut storage = MaybeUninit::uninit();
    // Each arm: open the object, fill in what the loader decides, load it
    // (the verifier runs here), then pin the program and its maps.
    match request.program.as_str() {
        "count_protos" => {
            let open = count_protos::CountProtosSkelBuilder::default().open(&mut storage)?;
            let mut skel = open.load().with_context(loading)?;
            pin_map(&mut skel.maps.counts, &dir.join("counts"))?;
            skel.progs.count_protos.pin(&prog_pin)?;
        }
        "drop_port" => {
            let mut open = drop_port::DropPortSkelBuilder::default().open(&mut storage)?;
            open.maps.rodata_data.as_deref_mut().context("the object has no .rodata")?.blocked_port = request.port;
            let mut skel = open.load().with_context(loading)?;
            skel.progs.drop_port.pin(&prog_pin)?;
        }
        "find_byte" => {
            let mut open = find_byte::FindByteSkelBuilder::default().open(&mut storage)?;
            open.maps.rodata_data.as_deref_mut().context("the object has no .rodata")?.banned = request.byte;
            let mut skel = open.load().with_context(loading)?;
            skel.progs.find_byte.pin(&prog_pin)?;
        }
        _ => {
            let open = sample_frames::SampleFramesSkelBuilder::default().open(&mut storage)?;
            let mut skel = open.load().with_context(loading)?;
            pin_map(&mut skel.maps.samples, &dir.join("samples"))?;
            skel.progs.sample_frames.pin(&prog_pin)?;
        }
    }
    println!("loaded {}, pinned at {}", request.program, prog_pin.display());
    Ok(())
}
// ANCHOR_END: load

fn pin_map(map: &mut libbpf_rs::MapMut<'_>, path: &Path) -> anyhow::Result<()> {
    unpin(path)?;
    map.pin(path).with_context(|| format!("pinning a map at {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_command_line_names_a_program_and_its_settings() {
        let r = Request::parse(&args("drop_port /sys/fs/bpf/lab10 --port 4242")).unwrap();
        assert_eq!((r.program.as_str(), r.port, r.byte), ("drop_port", 4242, 0));
        let r = Request::parse(&args("find_byte /x --byte 200")).unwrap();
        assert_eq!(r.byte, 200);
        assert!(Request::parse(&args("nope /x")).unwrap_err().to_string().contains("no program"));
        assert!(Request::parse(&args("find_byte /x --byte 300")).is_err());
        assert!(Request::parse(&args("find_byte /x --byte")).unwrap_err().to_string().contains("needs a value"));
        assert!(Request::parse(&args("find_byte")).is_err());
    }
}
