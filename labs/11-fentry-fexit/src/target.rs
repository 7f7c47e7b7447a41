//! Which kernel function to hook. Every unlink(2) and unlinkat(2) goes
//! through do_unlinkat, but a kernel's inner functions are no stable
//! interface: 7.x renamed it filename_unlinkat, with the same arguments
//! and result. The loaders ask the running kernel's BTF which name it has.

use anyhow::{Context, bail};
use libbpf_rs::btf::Btf;
use libbpf_rs::btf::types::Func;

// ANCHOR: target
/// The names the function has had, the one the BPF programs' SEC() names
/// first.
pub const NAMES: [&str; 2] = ["do_unlinkat", "filename_unlinkat"];

/// The name the running kernel gives the function.
pub fn unlink_function() -> anyhow::Result<&'static str> {
    let btf = Btf::from_vmlinux().context("failed to read the kernel's BTF (/sys/kernel/btf/vmlinux)")?;
    match NAMES.into_iter().find(|name| btf.type_by_name::<Func<'_>>(name).is_some()) {
        Some(name) => Ok(name),
        None => bail!("the kernel's BTF has no function named {}", NAMES.join(" or ")),
    }
}
// ANCHOR_END: target
