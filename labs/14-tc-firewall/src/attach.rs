//! Attaching the loaded program to the interface's TC hooks.

use std::os::fd::BorrowedFd;

// ANCHOR: attach
/// Puts the program `prog` on both TC hooks of the interface `ifindex`:
/// ingress (packets the interface receives) and egress (packets it sends).
pub fn attach(prog: BorrowedFd<'_>, ifindex: i32) -> anyhow::Result<()> {
    // TODO: TC programs hang off a qdisc. libbpf_rs::TcHookBuilder::new(prog)
    // builds hooks for one program: give it the ifindex, and handle(1),
    // priority(1) and replace(true), so that a second run replaces the
    // filter instead of adding another. Then builder.hook(TC_INGRESS):
    // create() adds the clsact qdisc, which holds both hooks, and attach()
    // puts the program on ingress; builder.hook(TC_EGRESS).attach() puts it
    // on egress. libbpf attaches in direct-action mode: the program's
    // return value is the verdict.
    let _ = (prog, ifindex);
    Ok(())
}
// ANCHOR_END: attach
