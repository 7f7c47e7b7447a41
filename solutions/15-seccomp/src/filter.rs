//! The filter: a classic-BPF program that the kernel runs on every system
//! call of this process and of everything it execs.

use std::io;
use std::mem::offset_of;

use libc::{
    BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS, seccomp_data, sock_filter, sock_fprog,
};

use crate::{AUDIT_ARCH_X86_64, jump, stmt};

/// Where the filter finds the syscall's number and its architecture in
/// the `struct seccomp_data` the kernel hands it.
const NR: u32 = offset_of!(seccomp_data, nr) as u32;
const ARCH: u32 = offset_of!(seccomp_data, arch) as u32;

// ANCHOR: build
/// Builds a filter that kills a call from any other architecture, makes
/// the x86_64 syscalls numbered in `deny` fail with EPERM, and allows the
/// rest.
pub fn build(deny: &[u32]) -> Vec<sock_filter> {
    // ANCHOR: solution_build
    let mut prog = vec![
        // A number means nothing until we know which table it indexes.
        stmt(BPF_LD | BPF_W | BPF_ABS, ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD | BPF_W | BPF_ABS, NR),
    ];
    for &nr in deny {
        // Equal: fall through to the return below; else skip over it.
        prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
        prog.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (libc::EPERM as u32 & SECCOMP_RET_DATA)));
    }
    prog.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    prog
    // ANCHOR_END: solution_build
}
// ANCHOR_END: build

// ANCHOR: install
/// Installs `prog` on the calling thread; exec keeps it.
pub fn install(prog: &[sock_filter]) -> io::Result<()> {
    // ANCHOR: solution_install
    let fprog = sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
    // Without CAP_SYS_ADMIN, the kernel takes a filter only from a process
    // that has promised never to gain privileges (no set-uid exec).
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fprog points at prog, which outlives the call; the kernel copies it.
    if unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &raw const fprog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
    // ANCHOR_END: solution_install
}
// ANCHOR_END: install
