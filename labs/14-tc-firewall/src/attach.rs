//! Attaching the loaded program to the interface's TC hooks.

use std::os::fd::BorrowedFd;

// ANCHOR: attach
/// Puts the program `prog` on both TC hooks of the interface `ifindex`:
/// ingress (packets the interface receives) and egress (packets it sends).
pub fn attach(prog: BorrowedFd<'_>, ifindex: i32) -> anyhow::Result<()> {
    // TODO: TC programs hang off a qdisc. libbpf_rs::TcHookBuilder builds
    // hooks for one program and interface: set its ifindex, then for each
    // of TC_INGRESS and TC_EGRESS take a hook, create() it (this adds the
    // clsact qdisc, once) and attach() the program. libbpf attaches it in
    // direct-action mode: its return value is the verdict.
    let _ = (prog, ifindex);
    Ok(())
}
// ANCHOR_END: attach
