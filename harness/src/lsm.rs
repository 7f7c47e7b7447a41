//! `requires_lsm` in a lab's manifest: the Linux security modules that must
//! be active in the guest for the lab to mean anything.
//!
//! A BPF LSM program loads and attaches on a kernel built with
//! CONFIG_BPF_LSM even when `bpf` is missing from the kernel's active LSM
//! list (CONFIG_LSM, or `lsm=` on the command line): the hooks it attaches
//! to are then never called, and every open goes through. A lab graded on
//! such a kernel would fail for a reason the student cannot fix, or pass a
//! starter that refuses nothing. So the harness runs one step of its own
//! before the lab's, which prints `/sys/kernel/security/lsm`, and stops
//! the run with a harness error (exit 2) naming the missing module and
//! the fix, before any check is evaluated.

use workbook_agent::Step;

use crate::checks::Observations;
use crate::manifest::Manifest;

/// The harness's own step: a name no lab step can have (validation
/// rejects it).
pub const STEP: &str = "harness: active LSMs";

/// Where the kernel lists its active LSMs, in the order it calls them.
pub const LSM_FILE: &str = "/sys/kernel/security/lsm";

/// The step that prints the active LSMs, for a manifest that requires
/// some. securityfs may not be mounted yet; mounting it twice only fails.
pub fn step(m: &Manifest) -> Option<Step> {
    if m.requires_lsm.is_empty() {
        return None;
    }
    Some(Step {
        name: STEP.into(),
        run: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("mount -t securityfs securityfs /sys/kernel/security 2>/dev/null; cat {LSM_FILE}"),
        ],
        timeout_s: 10.0,
        uid: 0,
        gid: None,
        background: false,
        ready: None,
        env: Vec::new(),
        cwd: None,
    })
}

/// The required modules `active` (the file's comma-separated text) lacks.
pub fn missing<'a>(required: &'a [String], active: &str) -> Vec<&'a str> {
    let active: Vec<&str> = active.trim().split(',').map(str::trim).collect();
    required.iter().map(String::as_str).filter(|r| !active.contains(r)).collect()
}

/// Why the run cannot be graded on `kernel`, if it cannot: a module the lab
/// requires is not active, or the list could not be read.
pub fn refusal(m: &Manifest, obs: &Observations, kernel: &str) -> Option<String> {
    if m.requires_lsm.is_empty() {
        return None;
    }
    let need = m.requires_lsm.join(", ");
    let Some(result) = obs.steps.get(STEP).filter(|r| r.exit_code == Some(0) && !r.stdout.trim().is_empty()) else {
        let said = obs.steps.get(STEP).map(|r| r.stderr.trim().to_string()).unwrap_or_default();
        return Some(format!(
            "lab {} requires the LSM(s) {need}, but the guest's list of active LSMs ({LSM_FILE}) could not be \
             read on kernel {kernel}{}: the lab's hooks may never run, so the run is not graded",
            m.number,
            if said.is_empty() { String::new() } else { format!(" ({said})") }
        ));
    };
    let lacking = missing(&m.requires_lsm, &result.stdout);
    if lacking.is_empty() {
        return None;
    }
    let active = result.stdout.trim();
    let lacking = lacking.join(", ");
    Some(format!(
        "lab {} requires the LSM(s) {need}, but {lacking} is not active on kernel {kernel} (active: {active}): \
         its hooks would never run, so the run is not graded. The kernel's default list (CONFIG_LSM) lacks it: \
         add it to `lsm=` in the lab's kernel_cmdline, e.g. kernel_cmdline = [\"lsm={active},{lacking}\"] \
         (or the kernel was built without its CONFIG_*_LSM option)",
        m.number
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    fn manifest(requires: &str) -> Manifest {
        crate::manifest::parse(
            std::path::Path::new("labs/16-x/lab.toml"),
            &format!(
                "number = 16\nslug = \"x\"\ntitle = \"X\"\nchapter = 9\nkind = \"ebpf\"\ngoal = \"g\"\n\
                 student_files = [\"src/x.bpf.c\"]\n{requires}\n[[steps]]\nname = \"s\"\nrun = [\"/bin/true\"]\n"
            ),
        )
        .unwrap()
    }

    fn observed(stdout: &str, exit: i32) -> Observations {
        let mut obs = Observations::default();
        obs.steps.insert(
            STEP.into(),
            StepResult { name: STEP.into(), exit_code: Some(exit), stdout: stdout.into(), ..Default::default() },
        );
        obs
    }

    #[test]
    fn a_lab_without_requirements_runs_no_step_of_the_harness() {
        let m = manifest("");
        assert!(step(&m).is_none());
        assert_eq!(refusal(&m, &Observations::default(), "6.1"), None);
    }

    #[test]
    fn the_list_is_read_before_the_labs_steps() {
        let m = manifest("requires_lsm = [\"bpf\"]");
        let plan = crate::engine::lab_plan(&m);
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [STEP, "s"]);
        assert!(plan.steps[0].run[2].ends_with("cat /sys/kernel/security/lsm"));
    }

    #[test]
    fn an_active_bpf_lsm_lets_the_run_be_graded() {
        let m = manifest("requires_lsm = [\"bpf\"]");
        // /sys/kernel/security/lsm of Debian's 6.1, as the guest printed it.
        let active = "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf";
        assert_eq!(refusal(&m, &observed(active, 0), "6.1"), None);
    }

    #[test]
    fn a_missing_bpf_lsm_is_a_harness_error_that_names_the_fix() {
        let m = manifest("requires_lsm = [\"bpf\"]");
        // Debian's 5.10 with its default CONFIG_LSM, as the guest printed it.
        let active = "lockdown,capability,yama,apparmor,tomoyo";
        let why = refusal(&m, &observed(active, 0), "5.10").expect("refused");
        assert!(why.contains("bpf is not active on kernel 5.10"), "{why}");
        assert!(why.contains("lsm=lockdown,capability,yama,apparmor,tomoyo,bpf"), "{why}");
        // A name that merely contains the module's is not the module.
        assert_eq!(missing(&["bpf".into()], "capability,bpfish\n"), ["bpf"]);
    }

    #[test]
    fn an_unreadable_list_is_a_harness_error_too() {
        let m = manifest("requires_lsm = [\"bpf\"]");
        let mut obs = observed("", 1);
        obs.steps.get_mut(STEP).unwrap().stderr = "cat: can't open '/sys/kernel/security/lsm'\n".into();
        let why = refusal(&m, &obs, "6.1").expect("refused");
        assert!(why.contains("could not be read on kernel 6.1 (cat: can't open"), "{why}");
        assert!(refusal(&m, &Observations::default(), "6.1").is_some());
    }

    #[test]
    fn a_lab_step_cannot_take_the_harness_step_name() {
        let path = std::path::Path::new("labs/16-x/lab.toml");
        let check = |text: &str| {
            let m = crate::manifest::parse(path, text).unwrap();
            crate::manifest::validate(path, &m, "16-x", &[], crate::checks::named::validate_args)
                .unwrap_err()
                .to_string()
        };
        let text = format!(
            "number = 16\nslug = \"x\"\ntitle = \"X\"\nchapter = 9\nkind = \"ebpf\"\ngoal = \"g\"\n\
             student_files = [\"src/x.bpf.c\"]\n[[steps]]\nname = \"{STEP}\"\nrun = [\"/bin/true\"]\n"
        );
        let err = check(&text);
        assert!(err.contains("steps[0].name"), "{err}");
        let err = check(
            &text.replace(&format!("name = \"{STEP}\""), "name = \"s\"").replace("goal", "requires_lsm = [\"\"]\ngoal"),
        );
        assert!(err.contains("requires_lsm[0]"), "{err}");
    }
}
