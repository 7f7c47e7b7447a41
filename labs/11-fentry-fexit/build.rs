use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The student's programs, and the benchmark's (given).
const SOURCES: &[(&str, &str)] =
    &[("src/bpf/unlink_snoop.bpf.c", "unlink_snoop.skel.rs"), ("src/bpf/unlink_bench.bpf.c", "unlink_bench.skel.rs")];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // vmlinux.h is committed once, generated from the pinned kernel's BTF.
    let vmlinux = env::var("WORKBOOK_VMLINUX_DIR").unwrap_or_else(|_| "../../vm/include".into());
    for (src, skel) in SOURCES {
        SkeletonBuilder::new()
            .source(src)
            .clang_args(["-I", &vmlinux])
            .build_and_generate(out.join(skel))
            .expect("compiling the BPF program failed: see clang's messages above");
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-env-changed=WORKBOOK_VMLINUX_DIR");
}
