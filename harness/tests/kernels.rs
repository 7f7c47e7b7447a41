//! `labctl kernels` on a matrix whose pin is gone from its suite: fetching
//! takes the newest kernel of the same series from the same suite, says so
//! in one line, records it, and `--update` pins it.
//!
//! This reaches the Debian archive through the machine's own apt sources
//! (a private apt configuration, as labctl always uses for a suite); on a
//! machine that cannot, it fails with apt's error, as it should.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

/// A bookworm kernel of 2023: long gone from bookworm-security.
const VANISHED_MATRIX: &str = r#"# A matrix whose only pin has vanished.
default = "6.1"

# The comment above the kernel stays.
[[kernel]]
name = "6.1"
suite = "bookworm-security"
series = "6.1"
package = "linux-image-6.1.0-9-cloud-amd64"
version = "6.1.27-1"   # long gone
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
release = "6.1.0-9-cloud-amd64"
"#;

fn labctl(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::cargo_bin("labctl")
        .unwrap()
        .args(args)
        .env("WORKBOOK_ROOT", root)
        .env_remove("WORKBOOK_DEBIAN_MIRROR")
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stdout, stderr)
}

#[test]
fn a_vanished_pin_falls_back_to_the_newest_of_its_series_and_update_pins_it() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    fs::create_dir_all(root.join("vm")).unwrap();
    fs::create_dir_all(root.join("labs")).unwrap();
    let matrix = root.join("vm/kernels.toml");
    fs::write(&matrix, VANISHED_MATRIX).unwrap();

    let (ok, stdout, stderr) = labctl(root, &["kernels", "--fetch"]);
    assert!(ok, "labctl kernels --fetch failed (is the Debian archive reachable through apt?)\n{stdout}\n{stderr}");
    let notices: Vec<&str> = stderr.lines().filter(|l| l.contains("is gone from")).collect();
    assert_eq!(notices.len(), 1, "one notice expected:\n{stderr}");
    let notice = notices[0];
    assert!(notice.starts_with("6.1: 6.1.0-9 is gone from bookworm-security; using 6.1.0-"), "{notice}");
    assert!(notice.ends_with("; `labctl kernels --update` pins it"), "{notice}");
    assert!(stdout.contains("fallen back from 6.1.0-9"), "{stdout}");

    // What was taken is recorded, and it is really there, unpacked.
    let lock = fs::read_to_string(root.join("vm/cache/kernels.lock")).unwrap();
    assert!(lock.contains("pinned_version = \"6.1.27-1\""), "{lock}");
    let taken: toml::Table = toml::from_str(&lock).unwrap();
    let taken = taken["fallback"][0]["taken"].as_table().unwrap().clone();
    let release = taken["release"].as_str().unwrap();
    let version = taken["version"].as_str().unwrap();
    let dir = root.join("vm/cache/kernels").join(format!("6.1-{version}"));
    assert!(dir.join("boot").join(format!("vmlinuz-{release}")).is_file(), "no kernel in {}", dir.display());
    assert!(dir.join("lib/modules").join(release).join("modules.dep").is_file(), "depmod did not run");

    // --update pins it, keeping the file's comments.
    let (ok, stdout, stderr) = labctl(root, &["kernels", "--update"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("6.1: pinned linux-image-{release} {version}")), "{stdout}");
    let text = fs::read_to_string(&matrix).unwrap();
    assert!(text.contains("# The comment above the kernel stays.\n[[kernel]]"), "{text}");
    assert!(text.contains(&format!("version = \"{version}\"   # long gone")), "{text}");
    assert!(text.contains(&format!("sha256 = \"{}\"", taken["sha256"].as_str().unwrap())), "{text}");
    assert!(!text.contains("6.1.0-9"), "{text}");
    assert!(!root.join("vm/cache/kernels.lock").exists(), "nothing is left to pin, so no lock file");

    // Now pinned: no notice, nothing fetched again.
    let (ok, stdout, stderr) = labctl(root, &["kernels", "--fetch"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!stderr.contains("is gone") && !stderr.contains("Fetching"), "{stderr}");
    assert!(stdout.contains(", pinned"), "{stdout}");
}

#[test]
fn two_labctls_fetching_at_once_unpack_the_kernel_once_and_whole() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    fs::create_dir_all(root.join("vm")).unwrap();
    fs::create_dir_all(root.join("labs")).unwrap();
    // The project's default kernel, pinned as it is.
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let matrix = labctl::kernels::Matrix::load(&project.join("vm/kernels.toml")).unwrap();
    let spec = matrix.get(&matrix.default).unwrap();
    let entry = toml::to_string(spec).unwrap();
    fs::write(root.join("vm/kernels.toml"), format!("default = {:?}\n\n[[kernel]]\n{entry}", spec.name)).unwrap();

    let spawn = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("labctl"))
            .args(["kernels", "--fetch"])
            .env("WORKBOOK_ROOT", root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let stderr = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(a.status.success() && b.status.success(), "{stderr}");
    assert_eq!(stderr.matches("Fetching kernel").count(), 1, "the second waits, then finds it fetched:\n{stderr}");
    let kernels = root.join("vm/cache/kernels");
    let entries: Vec<String> =
        fs::read_dir(&kernels).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!entries.iter().any(|e| e.starts_with(".unpack-")), "a half-unpacked tree is left: {entries:?}");
    let kernel = labctl::kernels::resolve(&matrix_of(root), &root.join("vm/cache"), None, true).unwrap();
    assert!(kernel.image.is_file() && kernel.modules_dir.unwrap().join("modules.dep").is_file());
}

fn matrix_of(root: &Path) -> labctl::kernels::Matrix {
    labctl::kernels::Matrix::load(&root.join("vm/kernels.toml")).unwrap()
}

#[test]
fn the_project_matrix_is_valid_and_pins_every_kernel_of_the_design() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let matrix = labctl::kernels::Matrix::load(&root.join("vm/kernels.toml")).unwrap();
    assert_eq!(matrix.names(), ["5.10", "6.1", "6.12", "7.x"]);
    assert_eq!(matrix.default, "6.1");
    let suites: Vec<&str> = matrix.kernels.iter().map(|k| k.suite.as_str()).collect();
    assert_eq!(suites, ["bullseye", "bookworm-security", "trixie", "trixie-backports"]);
}

/// 5.10's default LSM list lacks bpf; a lab that needs BPF LSM there says
/// `kernel_cmdline = ["lsm=...,bpf"]`, and the guest kernel must get it.
#[test]
fn a_labs_kernel_parameters_reach_the_guest_kernel() {
    use labctl::engine::{self, Options, RunRequest};
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let ws = labctl::workspace::Workspace::at(project).unwrap();
    let (sink, _rx) = std::sync::mpsc::channel();
    let options = Options { kernel: Some("5.10".into()), quiet: true, ..Options::default() };
    let env = engine::prepare(&ws, &options, &sink).unwrap();
    let script = "mount -t securityfs securityfs /sys/kernel/security && cat /sys/kernel/security/lsm";
    let command = ["/bin/sh".to_string(), "-c".into(), script.into()];
    let run = labctl::runcmd::run_plan(&command, &[], Path::new("/"), 30.0, |_| true).unwrap();
    let req = RunRequest {
        plan: &run.plan,
        binaries: &[],
        files: &run.files,
        modules: &[],
        console: labctl::qemu::Console::Captured,
        total: std::time::Duration::from_secs(60),
        name: "test-kernel-cmdline",
    };
    let lsms = |cmdline: &[String]| {
        let (run, _) = env.run_plan_with(&req, cmdline, &sink).unwrap();
        let step = engine::step_results(&run.events).remove("run").unwrap();
        assert_eq!(step.exit_code, Some(0), "{step:?}");
        step.stdout.trim().split(',').map(str::to_string).collect::<Vec<_>>()
    };
    let default = lsms(&[]);
    assert!(!default.contains(&"bpf".to_string()), "{default:?}");
    let asked = lsms(&["lsm=lockdown,yama,apparmor,bpf".into()]);
    assert!(asked.contains(&"bpf".to_string()), "{asked:?}");
}
