use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The four programs: each is its own BPF object, so that one the verifier
/// rejects does not stop the others from loading.
const PROGRAMS: &[&str] = &["count_protos", "drop_port", "find_byte", "sample_frames"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // vmlinux.h is committed once, generated from the pinned kernel's BTF.
    let vmlinux = env::var("WORKBOOK_VMLINUX_DIR").unwrap_or_else(|_| "../../vm/include".into());
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args(["-I", &vmlinux])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .expect("compiling the BPF program failed: see clang's messages above");
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/frame.h");
    println!("cargo:rerun-if-env-changed=WORKBOOK_VMLINUX_DIR");
}
