//! Loading, running and pinning a socket filter with raw bpf() calls.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::insn::Insn;
use crate::sys::{self, Cmd, ObjAttr, ProgLoadAttr, TestRunAttr};

/// Room for the verifier's account of a small program.
const LOG_SIZE: usize = 64 * 1024;

/// The kernel refused the program; `log` is the verifier's reason. The log
/// comes last in the message because its last lines say what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("BPF_PROG_LOAD failed: {errno}; the verifier's log:\n{}", log.trim_end())]
pub struct LoadError {
    pub errno: io::Error,
    pub log: String,
}

/// A loaded socket filter; the kernel frees it when the last descriptor
/// closes, unless it is pinned.
#[derive(Debug)]
pub struct SocketFilter {
    fd: OwnedFd,
}

impl SocketFilter {
    // ANCHOR: load
    /// BPF_PROG_LOAD: hands `insns` to the verifier. On failure the load is
    /// repeated with a log buffer, as libbpf does, so that the error says
    /// why.
    pub fn load(name: &str, insns: &[Insn]) -> Result<Self, LoadError> {
        let license = c"GPL";
        let mut attr = ProgLoadAttr {
            prog_type: sys::BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        let len = name.len().min(attr.prog_name.len() - 1);
        attr.prog_name[..len].copy_from_slice(&name.as_bytes()[..len]);

        let first = sys::bpf(Cmd::ProgLoad, &mut attr);
        let fd = match first {
            Ok(fd) => fd,
            Err(_) => {
                let mut log = vec![0u8; LOG_SIZE];
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                let again = sys::bpf(Cmd::ProgLoad, &mut attr);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let log = String::from_utf8_lossy(&log[..end]).into_owned();
                match again {
                    // Loaded the second time: unlikely, but then it is loaded.
                    Ok(fd) => fd,
                    Err(errno) => return Err(LoadError { errno, log }),
                }
            }
        };
        // SAFETY: BPF_PROG_LOAD returned a new descriptor nothing else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) } })
    }
    // ANCHOR_END: load

    /// BPF_PROG_TEST_RUN: runs the program once on `packet` (an Ethernet
    /// frame) and returns what it returned.
    pub fn test_run(&self, packet: &[u8]) -> io::Result<u32> {
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: packet.len() as u32,
            data_in: packet.as_ptr() as u64,
            repeat: 1,
            ..Default::default()
        };
        sys::bpf(Cmd::ProgTestRun, &mut attr)?;
        Ok(attr.retval)
    }

    /// BPF_OBJ_PIN: names the program in a bpf filesystem, so that it stays
    /// loaded after we exit.
    pub fn pin(&self, path: &Path) -> io::Result<()> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        let mut attr =
            ObjAttr { pathname: path.as_ptr() as u64, bpf_fd: self.fd.as_raw_fd() as u32, ..Default::default() };
        sys::bpf(Cmd::ObjPin, &mut attr).map(drop)
    }
}

/// An Ethernet frame of `len` bytes (at least the 14-byte header): broadcast
/// destination, a locally administered source, IPv4, and a zeroed payload.
pub fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14)];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}
