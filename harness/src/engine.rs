//! The path of one run: build, image, boot, run the steps, check.
//!
//! The engine reports what happens as [`EngineEvent`]s on a channel; the
//! terminal, the JSON and JUnit reports and the tests all read them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest;
use workbook_agent::{Event, LAB_BIN_DIR, PLAN_PATH, Plan, Step, StepResult, Stream};

use crate::INTERRUPTED;
use crate::accel::{self, AccelChoice};
use crate::builder::{self, LabBuild, Variant};
use crate::checks::{self, Observations, Status, Verdict};
use crate::error::{Error, Result};
use crate::image::{self, Archive};
use crate::kernels::{self, Kernel};
use crate::launch::{Launch, Launcher};
use crate::manifest::{DEFAULT_STEP_TIMEOUT_S, Lab, Manifest};
use crate::qemu::{Accel, Console, VmSpec};
use crate::vm::{Timeouts, VmEvent, VmRun};
use crate::workspace::Workspace;

/// How labctl runs VMs.
#[derive(Debug, Clone)]
pub struct Options {
    /// A matrix kernel name or a bzImage path; None for the default.
    pub kernel: Option<String>,
    pub accel: AccelChoice,
    /// Less chatter: no command lines, no build output unless it fails.
    pub quiet: bool,
    pub memory_mb: u32,
    /// Bound on a boot, from QEMU's start to the agent's first event.
    /// Default: 20 s under KVM, 60 s under TCG.
    pub boot_timeout: Option<Duration>,
    /// Boot the kernel for every run instead of restoring a snapshot.
    pub cold: bool,
}

impl Default for Options {
    /// `accel` from `WORKBOOK_ACCEL` when it is valid; [`prepare`] refuses
    /// an invalid one.
    fn default() -> Self {
        Options {
            kernel: None,
            accel: AccelChoice::from_env().ok().flatten().unwrap_or(AccelChoice::Auto),
            quiet: false,
            memory_mb: 512,
            boot_timeout: None,
            cold: false,
        }
    }
}

/// What the engine tells its readers.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Note(String),
    LabStart {
        number: u32,
        title: String,
        variant: String,
        seed: u64,
    },
    Phase {
        name: &'static str,
        ms: u64,
        detail: String,
    },
    Console(String),
    Output {
        step: String,
        stream: Stream,
        data: String,
    },
    /// A step's whole output that its manifest asks to show.
    Shown {
        step: String,
        stdout: String,
        stderr: String,
    },
    StepEnd(StepResult),
    Warning(String),
    /// A program the verifier rejected, explained: shown before the
    /// verdicts, which only say that the program did not load.
    Verifier(Box<VerifierReport>),
    Verdict(Verdict),
    LabEnd(Box<LabReport>),
}

/// The verifier tutor's reading of a step's output that holds a rejected
/// program's load log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifierReport {
    /// The step whose output held the log.
    pub step: String,
    #[serde(flatten)]
    pub explanation: crate::tutor::Explanation,
    /// The whole output of that step, log included, kept beside the
    /// console log: the tutor shows one line of it.
    pub log: Option<PathBuf>,
}

/// The first step (in the manifest's order) whose output holds a program
/// the verifier rejected, explained.
pub fn find_rejection(m: &Manifest, obs: &Observations) -> Option<(VerifierReport, String)> {
    m.steps.iter().filter_map(|s| obs.steps.get(&s.name)).find_map(|r| {
        let text = format!("{}\n{}", r.stderr, r.stdout);
        let explanation = crate::tutor::explain_output(&text)?;
        Some((VerifierReport { step: r.name.clone(), explanation, log: None }, text))
    })
}

pub type Sink = Sender<EngineEvent>;

fn send(sink: &Sink, ev: EngineEvent) {
    // A reader that went away (a closed report) must not stop the run.
    let _ = sink.send(ev);
}

/// Milliseconds spent in each phase of a lab run.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Phases {
    pub build_ms: u64,
    pub image_ms: u64,
    pub boot_ms: u64,
    pub run_ms: u64,
    pub check_ms: u64,
}

/// The result of one lab run, as the reports show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabReport {
    pub number: u32,
    pub slug: String,
    pub title: String,
    /// starter, solution, `mutant NAME` or submission.
    pub variant: String,
    /// The seed the workload was drawn from: `--seed` replays it.
    pub seed: u64,
    /// `uname -r` in the guest, or the kernel asked for if it never booted.
    pub kernel: String,
    pub accel: Option<&'static str>,
    pub passed: bool,
    pub duration_ms: u64,
    pub boot_ms: u64,
    pub phases: Phases,
    pub points: u32,
    pub max_points: u32,
    pub checks: Vec<Verdict>,
    /// Things the student should know about the run (a given file they
    /// edited, which grading ignored).
    pub notes: Vec<String>,
    pub console_log: Option<PathBuf>,
    /// Why the verifier rejected a program, when it did.
    pub verifier: Option<VerifierReport>,
    /// A harness error that stopped the run (exit code 2).
    pub error: Option<String>,
    /// A lab graded on every kernel (`every_kernel`): how it did on each.
    /// Its `checks` then pass only where they passed on every kernel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<crate::every_kernel::KernelRun>,
}

impl LabReport {
    pub fn failed_checks(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
    }
}

/// One VM run: what to run, what to ship, how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    pub plan: &'a Plan,
    /// Host files copied to /lab/bin (their shared libraries come along).
    pub binaries: &'a [PathBuf],
    /// Other host files, by guest path (an ELF program brings its shared
    /// libraries; anything else is copied as it is, mode and all).
    pub files: &'a [(String, PathBuf)],
    /// Kernel modules to load, by name.
    pub modules: &'a [String],
    pub console: Console,
    /// Bound on the run after boot.
    pub total: Duration,
    /// Names the console log: `target/labctl/runs/<pid>/<name>.console.log`.
    pub name: &'a str,
}

/// What every VM of one labctl invocation shares: the kernel, the base
/// image and the accelerator, decided once.
pub struct Env {
    pub ws: Workspace,
    pub options: Options,
    pub kernel: Kernel,
    pub qemu: PathBuf,
    pub base: Archive,
    pub accel: Accel,
    /// How each run's guest is started (see [`crate::launch`]).
    pub launcher: Box<dyn Launcher>,
}

pub const QEMU: &str = "qemu-system-x86_64";

/// Prepares the shared pieces: builds the agent, fetches the kernel, and
/// decides between KVM and TCG.
pub fn prepare(ws: &Workspace, options: &Options, sink: &Sink) -> Result<Env> {
    // A mistyped WORKBOOK_ACCEL is an error, not a silent default.
    AccelChoice::from_env()?;
    let qemu = crate::tools::find_in_path(QEMU)
        .ok_or_else(|| Error::Missing { what: QEMU.into(), fix: crate::tools::install_hint(QEMU) })?;
    let matrix = ws.kernels()?;
    let kernel = kernels::resolve(&matrix, &ws.cache_dir(), options.kernel.as_deref(), options.quiet)?;
    let guest = builder::build_agent(ws, options.quiet)?;
    let base = image::base_archive(&guest, &ws.cache_dir())?;
    let mut env = Env {
        ws: ws.clone(),
        options: options.clone(),
        kernel,
        qemu,
        base,
        accel: Accel::Tcg,
        launcher: Box::new(crate::launch::ColdBoot),
    };
    let mut kvm_refused = None;
    if options.accel != AccelChoice::Tcg {
        let probe = plan_archive(&Plan::default(), &[]);
        let initrd = image::build_initrd(&ws.cache_dir(), &env.base, &probe)?;
        let files = ws.run_files("kvm-probe")?;
        let spec = env.vm_spec(initrd, Console::Captured, &files.socket);
        let decision = accel::decide(options.accel, &ws.cache_dir(), &spec, &files.log, options.quiet)?;
        env.accel = decision.accel;
        kvm_refused = decision.reason;
    }
    // Chosen after the accelerator, which is part of a snapshot's machine.
    if !options.cold {
        let snapshots = crate::snapshot::Snapshot::new(ws.cache_dir().join("snapshots"), &env.kernel);
        if snapshots.possible() {
            env.launcher = Box::new(snapshots);
        }
    }
    let why = kvm_refused.map(|r| format!(" (a KVM probe failed: {r})")).unwrap_or_default();
    send(
        sink,
        EngineEvent::Note(format!(
            "kernel {} ({}), {}, {}{why}",
            env.kernel.name,
            env.kernel.release.as_deref().unwrap_or("custom"),
            env.accel.name(),
            env.launcher.name()
        )),
    );
    Ok(env)
}

/// The per-run part of the image: the plan, binaries in /lab/bin, modules.
pub fn plan_archive(plan: &Plan, modules: &[(String, PathBuf)]) -> Archive {
    let mut a = Archive::default();
    let json = serde_json::to_vec_pretty(plan).expect("plans serialise");
    a.bytes(PLAN_PATH, json, 0o644);
    a.dir(LAB_BIN_DIR);
    for (guest, host) in modules {
        a.file(guest, host, 0o644);
    }
    a
}

impl Env {
    pub fn vm_spec(&self, initrd: PathBuf, console: Console, socket: &Path) -> VmSpec {
        VmSpec {
            qemu: self.qemu.clone(),
            kernel: self.kernel.image.clone(),
            initrd,
            accel: self.accel,
            memory_mb: self.options.memory_mb,
            cpus: 1,
            console,
            events_socket: socket.to_path_buf(),
            cmdline_extra: Vec::new(),
            work_disk: None,
            incoming: None,
            qmp_socket: None,
        }
    }

    /// The boot bound: generous under TCG, whose speed depends on the host.
    pub fn boot_timeout(&self) -> Duration {
        if let Some(bound) = self.options.boot_timeout {
            return bound;
        }
        match self.accel {
            Accel::Kvm => Duration::from_secs(20),
            Accel::Tcg => Duration::from_secs(60),
        }
    }

    /// Builds the image for `req.plan` and runs it.
    pub fn run_plan(&self, req: &RunRequest<'_>, sink: &Sink) -> Result<(VmRun, u64)> {
        self.run_plan_with(req, &[], sink)
    }

    /// [`Env::run_plan`] with kernel parameters added to the command line
    /// (a lab's `kernel_cmdline`).
    pub fn run_plan_with(&self, req: &RunRequest<'_>, cmdline: &[String], sink: &Sink) -> Result<(VmRun, u64)> {
        let RunRequest { plan, binaries, modules: module_names, console, total, name: run_name, .. } = *req;
        let image_start = Instant::now();
        let cache = self.ws.cache_dir();
        let mut plan = plan.clone();
        let mut modules = Vec::new();
        if !module_names.is_empty() {
            let dir = self.kernel.modules_dir.as_ref().ok_or_else(|| {
                Error::Usage("this lab loads kernel modules, which a kernel given by path does not have".into())
            })?;
            for rel in image::module_closure(dir, module_names)? {
                let guest = format!("/lib/modules/{}/{rel}", self.kernel.release.as_deref().unwrap_or(""));
                plan.modules.push(guest.clone());
                modules.push((guest, dir.join(&rel)));
            }
        }
        let mut extra = plan_archive(&plan, &modules);
        for bin in binaries {
            let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            extra.elf_with_libs(&format!("{LAB_BIN_DIR}/{name}"), bin, &cache)?;
        }
        for (guest, host) in req.files {
            if image::is_elf(host) {
                extra.elf_with_libs(guest, host, &cache)?;
            } else {
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(host).map_err(Error::io(format!("reading {}", host.display())))?.permissions(),
                );
                extra.file(guest, host, mode & 0o7777);
            }
        }
        // Whatever the base already holds (libc, the loader) need not be
        // shipped twice.
        extra.entries.retain(|path, e| e.source == image::Source::Dir || !self.base.entries.contains_key(path));
        let staging_ms = image_start.elapsed().as_millis() as u64;

        let files = self.ws.run_files(run_name)?;
        let spec = VmSpec { cmdline_extra: cmdline.to_vec(), ..self.vm_spec(PathBuf::new(), console, &files.socket) };
        let timeouts = Timeouts { boot: self.boot_timeout(), total: total + self.boot_timeout() };
        let launch =
            Launch { base: &self.base, extra: &extra, spec, log: &files.log, timeouts, quiet: self.options.quiet };
        let mut image_ms = staging_ms;
        let result = self.launcher.launch(&cache, launch, &INTERRUPTED, &mut |ev| match ev {
            VmEvent::Staged { ms } => {
                image_ms = staging_ms + ms;
                send(sink, EngineEvent::Phase { name: "image", ms: image_ms, detail: String::new() });
            }
            VmEvent::Console(line) => send(sink, EngineEvent::Console(line.to_string())),
            VmEvent::Booted { boot_ms } => send(
                sink,
                EngineEvent::Phase {
                    name: "boot",
                    ms: boot_ms,
                    detail: format!("{} ({})", self.kernel.name, self.accel.name()),
                },
            ),
            VmEvent::Agent(Event::Output { step, stream, data }) => {
                send(sink, EngineEvent::Output { step: step.clone(), stream: *stream, data: data.clone() })
            }
            VmEvent::Agent(Event::StepEnd(r)) => send(sink, EngineEvent::StepEnd(r.clone())),
            VmEvent::Agent(Event::Warning { message }) => send(sink, EngineEvent::Warning(message.clone())),
            VmEvent::Agent(_) => {}
            VmEvent::Note(note) => send(sink, EngineEvent::Note(note.to_string())),
            VmEvent::Warning(warning) => send(sink, EngineEvent::Warning(warning.to_string())),
        });
        result.map(|run| (run, image_ms))
    }
}

/// The points a run earns: those of its passed checks, or none at all when
/// a precondition failed. A precondition carries no points of its own, so
/// without this a program that fails one (a filter that drops the frame it
/// must keep) would still collect every other check's points.
pub fn lab_points(m: &Manifest, verdicts: &[Verdict]) -> u32 {
    let preconditions_hold = m.checks.iter().zip(verdicts).all(|(c, v)| !c.precondition || v.passed);
    if !preconditions_hold {
        return 0;
    }
    verdicts.iter().filter(|v| v.passed).map(|v| v.points).sum()
}

/// The agent's steps for a lab's manifest, rendered for one seed.
pub fn lab_plan(m: &Manifest) -> Plan {
    Plan {
        modules: Vec::new(),
        // The harness's own look at the guest comes first, when the lab
        // needs one.
        steps: crate::lsm::step(m)
            .into_iter()
            .chain(m.steps.iter().map(|s| Step {
                name: s.name.clone(),
                run: s.run.clone(),
                timeout_s: s.timeout_s.unwrap_or(DEFAULT_STEP_TIMEOUT_S),
                uid: s.uid,
                gid: s.gid,
                background: s.background,
                ready: s.ready.clone(),
                env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                cwd: None,
            }))
            .collect(),
        stream: false,
        shell: false,
        collect: m.collect.clone(),
    }
}

/// What the guest reported, keyed for the checks.
pub fn observations(events: &[Event]) -> Observations {
    let mut obs = Observations::default();
    for ev in events {
        match ev {
            Event::StepEnd(r) => {
                obs.steps.insert(r.name.clone(), r.clone());
            }
            Event::File { path, data, error } => {
                let value = match (data, error) {
                    (Some(d), _) => Ok(d.clone()),
                    (None, e) => Err(e.clone().unwrap_or_default()),
                };
                obs.files.insert(path.clone(), value);
            }
            _ => {}
        }
    }
    obs
}

/// The verdict's name when the student's code does not compile.
pub const BUILD_CHECK: &str = "the lab compiles";

/// Which files to build, and the workload's seed.
#[derive(Debug, Clone)]
pub struct LabRun {
    pub variant: Variant,
    pub seed: u64,
    /// The hint tier (from 1) to show for a failing check, by check name:
    /// the learner's place on the hint ladder. Tier 1 when absent.
    pub hint_tiers: BTreeMap<String, usize>,
}

impl LabRun {
    /// A run with a fresh seed, or the given one.
    pub fn new(variant: Variant, seed: Option<u64>) -> Self {
        LabRun { variant, seed: seed.unwrap_or_else(crate::params::fresh_seed), hint_tiers: BTreeMap::new() }
    }
}

/// Builds and runs one lab and grades it. A failed check or a build error
/// in the student's code is a report with `passed: false`; only harness
/// trouble is an `Err`.
pub fn run_lab(env: &Env, lab: &Lab, run: &LabRun, sink: &Sink) -> Result<LabReport> {
    let manifest = lab.for_seed(run.seed)?;
    let started = Instant::now();
    send(
        sink,
        EngineEvent::LabStart {
            number: manifest.number,
            title: manifest.title.clone(),
            variant: run.variant.name(),
            seed: run.seed,
        },
    );
    if let Some(reason) = lab.unsupported_on(&env.kernel.name) {
        return Err(Error::Usage(format!(
            "lab {} does not run on kernel {}: {reason}",
            manifest.number, env.kernel.name
        )));
    }
    let mut report = new_report(&manifest, run);
    report.kernel = env.kernel.release.clone().unwrap_or_else(|| env.kernel.name.clone());
    report.accel = Some(env.accel.name());
    let shipped = match build(&env.ws, lab, &manifest, run, &mut report, env.options.quiet, sink)? {
        Some(shipped) => shipped,
        None => {
            report.duration_ms = started.elapsed().as_millis() as u64;
            send(sink, EngineEvent::LabEnd(Box::new(report.clone())));
            return Ok(report);
        }
    };
    let mut report = run_built(env, &manifest, run, &shipped, report, sink)?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    send(sink, EngineEvent::LabEnd(Box::new(report.clone())));
    Ok(report)
}

/// A report of `m` for `run` with nothing run yet.
pub fn new_report(m: &Manifest, run: &LabRun) -> LabReport {
    LabReport {
        number: m.number,
        slug: m.slug.clone(),
        title: m.title.clone(),
        variant: run.variant.name(),
        seed: run.seed,
        kernel: String::new(),
        accel: None,
        passed: false,
        duration_ms: 0,
        boot_ms: 0,
        phases: Phases::default(),
        points: 0,
        max_points: m.checks.iter().map(|c| c.points()).sum(),
        checks: Vec::new(),
        notes: Vec::new(),
        console_log: None,
        verifier: None,
        error: None,
        kernels: Vec::new(),
    }
}

/// The lab's binaries as a run ships them to /lab/bin, with the sha256 of
/// each, by file name: the evidence that what ran is what was built.
#[derive(Debug, Clone, Default)]
pub struct Shipped {
    pub binaries: Vec<PathBuf>,
    pub sha256: BTreeMap<String, String>,
}

/// Builds the lab for `run` into `report` (its notes and build time), and
/// returns the binaries as they will be shipped. None: the student's code
/// did not compile, and `report` holds that verdict.
pub fn build(
    ws: &Workspace,
    lab: &Lab,
    m: &Manifest,
    run: &LabRun,
    report: &mut LabReport,
    quiet: bool,
    sink: &Sink,
) -> Result<Option<Shipped>> {
    let build_start = Instant::now();
    let builder::Built { build, notes } = builder::build_lab(ws, lab, &run.variant, quiet)?;
    for note in &notes {
        send(sink, EngineEvent::Warning(note.clone()));
    }
    report.notes = notes;
    report.phases.build_ms = build_start.elapsed().as_millis() as u64;
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        // Ctrl-C reached cargo too: its failure says nothing about the code.
        return Err(Error::Interrupted);
    }
    send(sink, EngineEvent::Phase { name: "build", ms: report.phases.build_ms, detail: run.variant.name() });
    let binaries = match build {
        LabBuild::Built(bins) => bins,
        LabBuild::Failed(output) => {
            let verdict = Verdict {
                name: BUILD_CHECK.into(),
                status: Status::Bad,
                passed: false,
                detail: format!("cargo build failed:\n{}", checks::excerpt(&output, 25)),
                hint: Some("Fix the compiler errors above, then run the lab again.".into()),
                points: 0,
            };
            send(sink, EngineEvent::Verdict(verdict.clone()));
            report.checks.push(verdict);
            for c in &m.checks {
                let v = Verdict {
                    name: c.name.clone(),
                    status: Status::Missing,
                    passed: false,
                    detail: "not run: the lab did not compile".into(),
                    hint: None,
                    points: c.points(),
                };
                send(sink, EngineEvent::Verdict(v.clone()));
                report.checks.push(v);
            }
            return Ok(None);
        }
    };
    ship(&ws.cache_dir(), &binaries).map(Some)
}

/// The copies of `binaries` that go into the guest (see
/// [`image::stripped_copy`]), hashed.
pub fn ship(cache: &Path, binaries: &[PathBuf]) -> Result<Shipped> {
    let mut shipped = Shipped::default();
    for bin in binaries {
        let copy = image::stripped_copy(bin, cache)?;
        let bytes = std::fs::read(&copy).map_err(Error::io(format!("reading {}", copy.display())))?;
        let name = copy.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        shipped.sha256.insert(name, hex::encode(sha2::Sha256::digest(&bytes)));
        shipped.binaries.push(copy);
    }
    Ok(shipped)
}

/// Runs built binaries on `env`'s kernel and grades the run into `report`
/// (which keeps its build phase and notes). Sends the verdicts, not the
/// lab's end: the caller decides when the lab is over.
pub fn run_built(
    env: &Env,
    m: &Manifest,
    run: &LabRun,
    shipped: &Shipped,
    mut report: LabReport,
    sink: &Sink,
) -> Result<LabReport> {
    let LabRun { variant, hint_tiers, .. } = run;
    // A lab run on every kernel keeps a console log per kernel.
    let on = if m.every_kernel { format!("-{}", env.kernel.name) } else { String::new() };
    report.kernel = env.kernel.release.clone().unwrap_or_else(|| env.kernel.name.clone());
    report.accel = Some(env.accel.name());
    let plan = lab_plan(m);
    let run_name = format!("lab{:02}-{}{on}", m.number, variant.name().replace(' ', "-"));
    let total = Duration::from_secs_f64(m.timeout_s.unwrap_or(crate::manifest::DEFAULT_LAB_TIMEOUT_S));
    let req = RunRequest {
        plan: &plan,
        binaries: &shipped.binaries,
        files: &[],
        modules: &m.modules,
        console: Console::Captured,
        total,
        name: &run_name,
    };
    let (run, image_ms) = env.run_plan_with(&req, &m.kernel_cmdline, sink)?;
    report.phases.image_ms = image_ms;
    report.phases.boot_ms = run.boot_ms;
    report.phases.run_ms = run.total_ms.saturating_sub(run.boot_ms);
    report.boot_ms = run.boot_ms;
    report.console_log = Some(run.log.clone());
    if let Some(release) = run.events.iter().find_map(|e| match e {
        Event::Hello { kernel, .. } => Some(kernel.clone()),
        _ => None,
    }) {
        report.kernel = release;
    }
    send(sink, EngineEvent::Phase { name: "run", ms: report.phases.run_ms, detail: String::new() });

    let check_start = Instant::now();
    let mut obs = observations(&run.events);
    obs.built = shipped.sha256.clone();
    // A hook that cannot run makes every verdict meaningless.
    if let Some(why) = crate::lsm::refusal(m, &obs, &report.kernel) {
        return Err(Error::Kernel(format!("{why}\n  console log: {}", run.log.display())));
    }
    for step in m.steps.iter().filter(|s| s.show) {
        if let Some(r) = obs.steps.get(&step.name) {
            send(sink, EngineEvent::Shown { step: r.name.clone(), stdout: r.stdout.clone(), stderr: r.stderr.clone() });
        }
    }
    if let Some((mut rejection, text)) = find_rejection(m, &obs) {
        let path = run.log.with_file_name(format!("{run_name}.{}.verifier.log", rejection.step));
        // The log is evidence for the learner, not for the verdict: a
        // failure to keep it costs only the path.
        rejection.log = crate::report::write_file(&path, text.as_bytes()).ok().map(|()| path);
        send(sink, EngineEvent::Verifier(Box::new(rejection.clone())));
        report.verifier = Some(rejection);
    }
    report.checks = checks::evaluate(m, &obs);
    for (verdict, check) in report.checks.iter_mut().zip(&m.checks) {
        let tier = hint_tiers.get(&check.name).copied().unwrap_or(1).clamp(1, check.hints.len().max(1));
        if verdict.hint.is_some() {
            verdict.hint = check.hints.get(tier - 1).cloned();
        }
    }
    let early = crate::incomplete::early_end(&run);
    if let Some(end) = &early {
        crate::incomplete::explain_missing(&mut report.checks, end);
    }
    crate::incomplete::explain_truncated(&mut report.checks, m, &obs);
    for step in crate::incomplete::truncated_steps(&obs) {
        send(sink, EngineEvent::Warning(crate::incomplete::truncation_note(step)));
    }
    report.phases.check_ms = check_start.elapsed().as_millis() as u64;
    for v in &report.checks {
        send(sink, EngineEvent::Verdict(v.clone()));
    }
    // A run that ended early never passes, whoever is to blame.
    report.passed = report.checks.iter().all(|c| c.passed) && early.is_none();
    report.points = lab_points(m, &report.checks);
    if let Some(error) = early.and_then(|e| e.harness_error) {
        send(sink, EngineEvent::Warning(error.clone()));
        report.error = Some(error);
    }
    Ok(report)
}

/// Step results by name, for `labctl run`.
pub fn step_results(events: &[Event]) -> BTreeMap<String, StepResult> {
    observations(events).steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(name: &str, passed: bool, points: u32) -> Verdict {
        let status = if passed { Status::Good } else { Status::Bad };
        Verdict { name: name.into(), status, passed, detail: String::new(), hint: None, points }
    }

    #[test]
    fn a_rejected_program_is_found_in_the_first_step_that_logged_it() {
        let m = crate::manifest::parse(
            std::path::Path::new("labs/01-x/lab.toml"),
            "number = 1\nslug = \"x\"\ntitle = \"X\"\nchapter = 1\nkind = \"ebpf\"\ngoal = \"g\"\n\
             student_files = [\"src/x.rs\"]\n[[steps]]\nname = \"load\"\nrun = [\"/bin/true\"]\n\
             [[steps]]\nname = \"words\"\nrun = [\"/bin/true\"]\n",
        )
        .unwrap();
        let step =
            |name: &str, stderr: &str| StepResult { name: name.into(), stderr: stderr.into(), ..Default::default() };
        let mut obs = Observations::default();
        // A program's own words that look like a verifier message are not a log.
        obs.steps.insert("words".into(), step("words", "R0 invalid mem access 'map_value_or_null'\n"));
        assert_eq!(find_rejection(&m, &obs), None);
        obs.steps.insert("load".into(), step("load", include_str!("../tests/data/verifier/5.10/no_null_check.log")));
        let (found, text) = find_rejection(&m, &obs).expect("the load step's log");
        assert_eq!(found.step, "load");
        assert_eq!(found.explanation.kind, "null-check");
        assert!(text.contains("-- BEGIN PROG LOAD LOG --"));
    }

    #[test]
    fn a_failed_precondition_voids_the_labs_points() {
        let m = crate::manifest::parse(
            std::path::Path::new("labs/01-x/lab.toml"),
            r#"
number = 1
slug = "x"
title = "X"
chapter = 1
kind = "ptrace"
goal = "g"
student_files = ["src/x.rs"]
[[steps]]
name = "s"
run = ["/bin/true"]
[[checks]]
name = "pre"
kind = "exit_code"
step = "s"
equals = 0
precondition = true
[[checks]]
name = "worth"
kind = "exit_code"
step = "s"
equals = 0
points = 3
"#,
        )
        .unwrap();
        assert_eq!(lab_points(&m, &[verdict("pre", true, 0), verdict("worth", true, 3)]), 3);
        assert_eq!(lab_points(&m, &[verdict("pre", false, 0), verdict("worth", true, 3)]), 0);
        assert_eq!(lab_points(&m, &[verdict("pre", true, 0), verdict("worth", false, 3)]), 0);
    }
}
