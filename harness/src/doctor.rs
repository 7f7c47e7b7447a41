//! `labctl doctor`: every prerequisite, and how to install what is missing.

use crate::accel;
use crate::kernels;
use crate::workspace::Workspace;

use crate::tools::{self, install_hint};

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

pub fn findings(ws: &Workspace) -> Vec<Finding> {
    let mut out = Vec::new();
    let programs = [
        ("qemu-system-x86_64", "boots the lab VM"),
        ("clang", "compiles BPF C"),
        ("pkg-config", "finds libelf and zlib for libbpf-sys"),
        ("cargo", "builds labs"),
        ("ldd", "finds the shared libraries to copy into the guest"),
        ("strip", "keeps the guest image small"),
        ("dpkg-deb", "unpacks kernel packages"),
        ("depmod", "indexes the guest kernels' modules"),
        ("apt-get", "downloads kernel packages"),
        ("busybox", "the guest's shell and tools"),
        ("strace", "copied into the guest"),
        ("bpftool", "copied into the guest"),
        ("ip", "copied into the guest"),
        ("mdbook", "builds the book"),
        ("just", "the project's commands"),
        ("chromium", "the book's browser test"),
    ];
    for (program, why) in programs {
        let found = tools::find(program);
        out.push(match found {
            Some(p) => Finding { what: program.into(), ok: true, detail: format!("{} ({why})", p.display()) },
            None => Finding {
                what: program.into(),
                ok: false,
                detail: format!("missing ({why}); install: {}", install_hint(program)),
            },
        });
    }
    for lib in ["libelf", "zlib"] {
        let ok = tools::pkg_config_has(lib);
        out.push(Finding {
            what: lib.into(),
            ok,
            detail: if ok { "headers found".into() } else { format!("missing; install: {}", install_hint(lib)) },
        });
    }
    match ws.kernels() {
        Ok(matrix) => {
            for spec in &matrix.kernels {
                let what = format!("kernel {}", spec.name);
                out.push(match kernels::state(spec, &ws.cache_dir()) {
                    Ok(state) if state.fetched => Finding { what, ok: true, detail: state.describe() },
                    Ok(state) => Finding {
                        what,
                        ok: false,
                        detail: format!(
                            "not fetched ({} from {}); run: labctl kernels --fetch   (or ./setup.sh)",
                            state.describe(),
                            spec.suite
                        ),
                    },
                    Err(e) => Finding { what, ok: false, detail: e.to_string() },
                });
            }
        }
        Err(e) => out.push(Finding { what: "vm/kernels.toml".into(), ok: false, detail: e.to_string() }),
    }
    let kvm = accel::kvm_device_usable();
    out.push(Finding {
        what: "kvm".into(),
        ok: true,
        detail: if kvm {
            "/dev/kvm is usable; labctl probes it once before trusting it".into()
        } else {
            "no usable /dev/kvm: VMs run under TCG (slower, but fine)".into()
        },
    });
    out
}
