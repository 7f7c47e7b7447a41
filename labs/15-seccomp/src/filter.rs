//! The filter: a classic-BPF program that the kernel runs on every system
//! call of this process and of everything it execs.

use std::io;
use std::mem::offset_of;

#[allow(unused_imports)]
use libc::{
    BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS, seccomp_data, sock_filter, sock_fprog,
};

#[allow(unused_imports)]
use crate::{AUDIT_ARCH_X86_64, jump, stmt};

/// Where the filter finds the syscall's number and its architecture in
/// the `struct seccomp_data` the kernel hands it.
#[allow(dead_code)]
const NR: u32 = offset_of!(seccomp_data, nr) as u32;
#[allow(dead_code)]
const ARCH: u32 = offset_of!(seccomp_data, arch) as u32;

// ANCHOR: build
/// Builds a filter that kills a call from any other architecture, makes
/// the x86_64 syscalls numbered in `deny` fail with EPERM, and allows the
/// rest.
pub fn build(deny: &[u32]) -> Vec<sock_filter> {
    // ANCHOR: todo_build
    // TODO: load seccomp_data.arch (stmt(BPF_LD | BPF_W | BPF_ABS, ARCH)),
    // and return SECCOMP_RET_KILL_PROCESS unless it is AUDIT_ARCH_X86_64.
    // Then load seccomp_data.nr and, for each number in `deny`, compare
    // (jump(BPF_JMP | BPF_JEQ | BPF_K, nr, jt, jf)) and return
    // SECCOMP_RET_ERRNO with EPERM in its data bits when it is equal.
    // The last instruction returns SECCOMP_RET_ALLOW.
    let _ = deny;
    vec![stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)]
    // ANCHOR_END: todo_build
}
// ANCHOR_END: build

// ANCHOR: install
/// Installs `prog` on the calling thread; exec keeps it.
pub fn install(prog: &[sock_filter]) -> io::Result<()> {
    // ANCHOR: todo_install
    // TODO: wrap prog in a sock_fprog { len, filter }, promise
    // PR_SET_NO_NEW_PRIVS with prctl(2), then call seccomp(2):
    // libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog).
    let _ = prog;
    Err(io::Error::other("TODO: install the filter (src/filter.rs)"))
    // ANCHOR_END: todo_install
}
// ANCHOR_END: install
