//! The bpf() system call and the `union bpf_attr` members this lab needs
//! (include/uapi/linux/bpf.h), declared as `#[repr(C)]` structs with the
//! kernel's layout. We pass the size of the member we fill in; the kernel
//! treats the bytes we did not send as zero.

use std::io;
use std::mem::size_of;

/// `enum bpf_cmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Cmd {
    ProgLoad = 5,
    ObjPin = 6,
    ProgTestRun = 10,
}

/// `enum bpf_prog_type`: a socket filter sees packets as `struct __sk_buff`
/// and returns how many bytes of each to keep (0 drops it).
pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// `bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct ProgLoadAttr {
    pub prog_type: u32,
    /// Number of 8-byte instructions.
    pub insn_cnt: u32,
    /// Address of the first `struct bpf_insn`.
    pub insns: u64,
    /// Address of a NUL-terminated licence string.
    pub license: u64,
    /// 0: no log; 1: the verifier explains itself; 2: in detail.
    pub log_level: u32,
    pub log_size: u32,
    /// Address of a buffer for the verifier's log.
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    /// NUL-padded; `bpftool prog show` lists it.
    pub prog_name: [u8; 16],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
}

/// `bpf_attr` for BPF_PROG_TEST_RUN, up to `duration`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct TestRunAttr {
    pub prog_fd: u32,
    /// Out: what the program returned.
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    /// Address of the packet.
    pub data_in: u64,
    pub data_out: u64,
    /// Runs; 0 means 1.
    pub repeat: u32,
    /// Out: average run time in nanoseconds.
    pub duration: u32,
}

/// `bpf_attr` for BPF_OBJ_PIN.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct ObjAttr {
    pub pathname: u64,
    pub bpf_fd: u32,
    pub file_flags: u32,
}

/// Calls bpf(cmd, attr, sizeof(*attr)): its non-negative result, or the
/// errno as an `io::Error`.
pub fn bpf<A>(cmd: Cmd, attr: &mut A) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] attr struct
    // whose size we pass along; the addresses inside it were taken by the
    // caller from values that outlive this call.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_int, attr as *mut A, size_of::<A>() as libc::c_uint) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_have_the_kernels_layout() {
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(TestRunAttr, data_in), 16);
        assert_eq!(size_of::<TestRunAttr>(), 40);
        assert_eq!(size_of::<ObjAttr>(), 16);
    }
}
