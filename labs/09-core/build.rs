use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/core_snoop.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // One vmlinux.h, from one kernel, for every kernel: the program's
    // field reads are CO-RE relocations that libbpf fixes up at load time
    // against the BTF of the kernel it runs on.
    let vmlinux = env::var("WORKBOOK_VMLINUX_DIR").unwrap_or_else(|_| "../../vm/include".into());
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-I", &vmlinux])
        .build_and_generate(out.join("core_snoop.skel.rs"))
        .expect("compiling the BPF program failed: see clang's messages above");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-env-changed=WORKBOOK_VMLINUX_DIR");
}
