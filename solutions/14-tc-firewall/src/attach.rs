//! Attaching the loaded program to the interface's TC hooks.

use std::os::fd::BorrowedFd;

use anyhow::Context;
use libbpf_rs::{TC_EGRESS, TC_INGRESS, TcHookBuilder};

// ANCHOR: attach
/// Puts the program `prog` on both TC hooks of the interface `ifindex`:
/// ingress (packets the interface receives) and egress (packets it sends).
pub fn attach(prog: BorrowedFd<'_>, ifindex: i32) -> anyhow::Result<()> {
    let mut builder = TcHookBuilder::new(prog);
    // handle and priority name the filter, so that a second run replaces
    // it instead of adding another beside it.
    builder.ifindex(ifindex).replace(true).handle(1).priority(1);
    let mut ingress = builder.hook(TC_INGRESS);
    // One clsact qdisc holds both hooks: creating it through either hook
    // is enough. (If it is there already, libbpf passes on the kernel's
    // complaint and carries on.)
    ingress.create().context("creating the clsact qdisc")?;
    ingress.attach().context("attaching to ingress")?;
    builder.hook(TC_EGRESS).attach().context("attaching to egress")?;
    Ok(())
}
// ANCHOR_END: attach
