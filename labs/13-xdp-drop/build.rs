use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/xdp_count.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // vmlinux.h is committed once, generated from the pinned kernel's BTF.
    let vmlinux = env::var("WORKBOOK_VMLINUX_DIR").unwrap_or_else(|_| "../../vm/include".into());
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-I", &vmlinux])
        .build_and_generate(out.join("xdp_count.skel.rs"))
        .expect("compiling the BPF program failed: see clang's messages above");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-env-changed=WORKBOOK_VMLINUX_DIR");
}
