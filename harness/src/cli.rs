//! The `labctl` command line: one function per verb, each returning how
//! the process should exit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use workbook_agent::{Plan, Stream};

use crate::accel::AccelChoice;
use crate::builder;
use crate::builder::Variant;
use crate::engine::{self, EngineEvent, Env, LabReport, LabRun, Options, RunRequest};
use crate::error::{Error, Result};
use crate::manifest::{HintLanguage, Lab};
use crate::qemu::Console;
use crate::report::{self, TerminalOptions};
use crate::workspace::Workspace;

/// Exit code for a harness error in `run` and `shell`, distinct from any
/// status the command in the guest could return as 1 or 2.
pub const RUN_HARNESS_ERROR: u8 = 125;

#[derive(Debug, Parser)]
#[command(name = "labctl", version, about = "Build, run and grade eBPF Workbook labs in a pinned-kernel VM")]
pub struct Cli {
    /// Language of the hints: en or ko. Default: Korean when LC_ALL,
    /// LC_MESSAGES or LANG (the first one set) starts with `ko`.
    #[arg(long, global = true, value_parser = ["en", "ko"])]
    pub lang: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct VmArgs {
    /// Kernel to boot: a name from vm/kernels.toml (5.10, 6.1, 6.12, 7.x) or a
    /// bzImage path; `verify` and `grade` also take `all`, the whole matrix.
    #[arg(long, short)]
    pub kernel: Option<String>,
    /// CPU acceleration: auto probes KVM once and falls back to TCG.
    #[arg(long, value_enum)]
    pub accel: Option<AccelChoice>,
    /// Print fewer progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Show every command labctl runs (cargo, QEMU, apt) and cargo's output.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Boot the kernel for every run instead of restoring a saved VM snapshot.
    #[arg(long)]
    pub cold: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build lab N, run it in the VM and check it (exit 0 pass, 1 fail, 2 error).
    Lab {
        number: u32,
        /// Build the reference solution instead of the starter.
        #[arg(long)]
        solution: bool,
        /// Build one of the lab's wrong solutions instead: NAME is a patch
        /// of solutions/NN-slug/mutants/ without `.patch` (what the grader
        /// makes of a typical mistake).
        #[arg(long, value_name = "NAME", conflicts_with_all = ["solution", "watch"])]
        mutant: Option<String>,
        /// Also show the guest's console.
        #[arg(long)]
        console: bool,
        /// Run again whenever a file of the lab changes.
        #[arg(long, conflicts_with_all = ["json", "junit"])]
        watch: bool,
        /// Replay the workload of an earlier run (its seed is printed with the verdict).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        junit: Option<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Grade every lab of this tree (the student's code); write JSON, JUnit and a summary.
    Grade {
        /// Grade the student files of another checkout (a student's
        /// submission); everything else comes from this one.
        #[arg(long, value_name = "DIR")]
        submission: Option<PathBuf>,
        /// The workload seed (default: a fresh one per lab).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        junit: Option<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Prove, in the VM, that every starter fails, every solution passes and every mutant fails.
    Verify {
        /// Only these labs (default: all).
        #[arg(long = "lab")]
        labs: Vec<u32>,
        /// The workload seed (default: a fresh one per run).
        #[arg(long)]
        seed: Option<u64>,
        /// Skip the mutants (starter and solution only).
        #[arg(long)]
        no_mutants: bool,
        /// VMs run at once (default: one per core, at most 4).
        #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: Option<u16>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Run a command (or a host binary, copied in) in the VM; exits with its status.
    Run {
        /// Seconds before the command is killed.
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
        /// Also copy this host file or directory in (repeatable); it lands
        /// under /lab/work, the command's working directory, at its path
        /// relative to here.
        #[arg(long = "copy", value_name = "PATH")]
        copies: Vec<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive root shell in the lab VM; `exit` powers it off. With a lab
    /// number, the lab's freshly built binaries are in /lab/bin and its modules loaded.
    Shell {
        lab: Option<u32>,
        /// With a lab: its reference solution's binaries instead of yours.
        #[arg(long, requires = "lab")]
        solution: bool,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Time boot-to-verdict of labs 01 and 03 (solutions), split into phases.
    Bench {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Labs to time.
        #[arg(long = "lab", default_values_t = [1u32, 3])]
        labs: Vec<u32>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Check every prerequisite and say how to install what is missing.
    Doctor,
    /// The compatibility table (lab x kernel) of the last `verify --kernel all`,
    /// as Markdown; with --json, the whole report.
    Matrix {
        #[arg(long)]
        json: bool,
    },
    /// List the kernel matrix; with --fetch, download what is missing.
    Kernels {
        #[arg(long)]
        fetch: bool,
        /// Fetch, then pin in vm/kernels.toml the kernels taken in place of
        /// pins that are gone from their suites.
        #[arg(long)]
        update: bool,
        /// A Debian archive URL (ending in /debian), for machines whose apt
        /// has no Debian sources.
        #[arg(long)]
        mirror: Option<String>,
        /// Only the listing and the notices, not the commands run.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Every tier of every hint of lab N.
    Hint {
        number: u32,
        /// Unlock the next tier of each failing check (remembered in your progress).
        #[arg(long)]
        next: bool,
    },
    /// List the labs.
    List,
    /// Every lab: passed, failed or not tried, points, last run, and what comes next.
    Progress,
    /// Write the class edition into DIR: everything but the solutions and mutants.
    Export { dir: PathBuf },
    /// The difference between your files and the reference (once the lab has passed).
    Solution {
        number: u32,
        /// Show it before the lab passes.
        #[arg(long)]
        force: bool,
    },
    /// Seal the labs' given files: write labs/given.lock from the working tree.
    Seal {
        /// Only compare: exit 1, naming the files, when labs/given.lock does not match the tree.
        #[arg(long)]
        check: bool,
    },
}

/// Runs the command and maps the result to an exit code, printing harness
/// errors as one clear message.
pub fn main(cli: Cli) -> ExitCode {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Interrupting sets the flag: the VM loop unwinds and kills QEMU.
        let _ = on_signal(signal);
    }
    let is_run = matches!(cli.command, Command::Run { .. } | Command::Shell { .. });
    match cli.lang.as_deref() {
        Some("ko") => HintLanguage::Korean,
        Some(_) => HintLanguage::English,
        None => HintLanguage::from_env(),
    }
    .set();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if is_run { RUN_HARNESS_ERROR } else { 2 })
        }
    }
}

fn on_signal(signal: i32) -> std::io::Result<signal_hook::SigId> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal_hook::low_level::register(signal, || {
            crate::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    }
}

fn options(vm: &VmArgs) -> Options {
    // Quiet by default: the verdict is the point; -v shows the machinery.
    let mut o =
        Options { kernel: vm.kernel.clone(), quiet: vm.quiet || !vm.verbose, cold: vm.cold, ..Options::default() };
    if let Some(a) = vm.accel {
        o.accel = a;
    }
    o
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Doctor => doctor(),
        Command::Kernels { fetch, update, mirror, quiet } => kernels(fetch, update, mirror.as_deref(), quiet),
        Command::Matrix { json } => matrix(json),
        Command::Hint { number, next: false } => hint(number),
        Command::Hint { number, next: true } => crate::learner::next_hint(number),
        Command::List => list(),
        Command::Progress => crate::learner::show_progress(),
        Command::Export { dir } => {
            let ws = Workspace::discover()?;
            let n = crate::export::export(&ws, &dir)?;
            println!("Wrote the class edition ({n} files, no solutions) to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Solution { number, force } => crate::learner::solution(number, force),
        Command::Seal { check } => seal(check),
        Command::Lab { number, solution, mutant, console, watch, seed, json, junit, vm } => {
            let variant = match mutant {
                Some(name) => Variant::Mutant(mutant_patch(number, &name)?),
                None if solution => Variant::Solution,
                None => Variant::Starter,
            };
            if watch {
                watch_lab(number, variant, seed, console, &vm)
            } else {
                lab(number, LabRun::new(variant, seed), console, json, junit, &vm)
            }
        }
        Command::Grade { submission, seed, json, junit, vm } => grade(submission, seed, json, junit, &vm),
        Command::Verify { labs, seed, no_mutants, jobs, vm } => {
            verify(&labs, seed, !no_mutants, jobs.map(usize::from), &vm)
        }
        Command::Run { timeout, copies, vm, command } => run(&command, &copies, timeout, &vm),
        Command::Shell { lab, solution, vm } => shell(lab, solution, &vm),
        Command::Bench { runs, labs, vm } => crate::bench::bench(&labs, runs, &options(&vm)),
    }
}

/// A terminal reporter on its own thread, reading the engine's events.
pub struct Terminal {
    pub sink: engine::Sink,
    handle: thread::JoinHandle<()>,
}

impl Terminal {
    pub fn start(opts: TerminalOptions) -> Self {
        let (sink, rx) = mpsc::channel();
        let handle = thread::spawn(move || report::terminal(rx, opts));
        Terminal { sink, handle }
    }

    /// Waits until everything sent so far is printed.
    pub fn finish(self) {
        drop(self.sink);
        let _ = self.handle.join();
    }
}

fn exit_for(reports: &[LabReport]) -> ExitCode {
    if reports.iter().any(|r| r.error.is_some()) {
        // A run the harness could not finish: its verdicts are incomplete.
        ExitCode::from(2)
    } else if reports.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The report of a run the harness finished, or its harness error.
fn finished(report: LabReport) -> Result<LabReport> {
    match &report.error {
        Some(e) => Err(Error::Run(e.clone())),
        None => Ok(report),
    }
}

fn lab(
    number: u32,
    run: LabRun,
    console: bool,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    vm: &VmArgs,
) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let mut opts = options(vm);
    let mut run = run;
    let learner = run.variant == Variant::Starter;
    let lab = if learner { ws.starter_lab(number, opts.quiet)? } else { ws.lab(number)? };
    if learner {
        run.hint_tiers = crate::progress::Progress::load(&ws.root).map(|p| p.tiers(number)).unwrap_or_default();
    }
    let everywhere = crate::every_kernel::covers_matrix(&lab, vm.kernel.as_deref());
    if everywhere {
        // The run starts on the default kernel and goes on to the others.
        opts.kernel = None;
    }
    let term = Terminal::start(TerminalOptions { console, progress: !vm.quiet });
    let result = engine::prepare(&ws, &opts, &term.sink)
        .and_then(|env| crate::every_kernel::run_lab(&env, &lab, &run, everywhere, &term.sink));
    term.finish();
    let report = result?;
    if learner {
        crate::learner::after_run(&ws, &lab, &report);
    }
    let reports = [report];
    if let Some(path) = json {
        report::write_json(&path, &reports)?;
    }
    if let Some(path) = junit {
        report::write_junit(&path, &reports)?;
    }
    Ok(exit_for(&reports))
}

/// The patch of lab `number`'s mutant `name`, or a usage error that lists
/// the lab's mutants.
fn mutant_patch(number: u32, name: &str) -> Result<PathBuf> {
    let ws = Workspace::discover()?;
    let lab = ws.lab(number)?;
    let patches = builder::mutants(&lab);
    let stem = name.strip_suffix(".patch").unwrap_or(name);
    if let Some(found) = patches.iter().find(|p| p.file_stem().is_some_and(|s| s == stem)) {
        return Ok(found.clone());
    }
    let names: Vec<String> =
        patches.iter().filter_map(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
    Err(Error::Usage(format!(
        "lab {number} has no mutant `{stem}`; its mutants ({}): {}",
        ws.relative(&lab.solution_dir.join("mutants")).display(),
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    )))
}

/// `labctl lab N --watch`: runs the lab, then again after every save, until
/// Ctrl-C. A harness error in one run is shown and watching goes on.
fn watch_lab(number: u32, variant: Variant, seed: Option<u64>, console: bool, vm: &VmArgs) -> Result<ExitCode> {
    use notify::Watcher;
    let ws = Workspace::discover()?;
    let mut opts = options(vm);
    let lab = if variant == Variant::Starter { ws.starter_lab(number, opts.quiet)? } else { ws.lab(number)? };
    let everywhere = crate::every_kernel::covers_matrix(&lab, vm.kernel.as_deref());
    if everywhere {
        opts.kernel = None;
    }
    let (changed_tx, changed) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only edits count: the build itself opens and reads every source
        // file, and build output is not an edit either.
        let is_edit = |ev: &notify::Event| {
            matches!(
                ev.kind,
                notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
            ) && ev.paths.iter().any(|p| !p.components().any(|c| c.as_os_str() == "target"))
        };
        if res.is_ok_and(|ev| is_edit(&ev)) {
            let _ = changed_tx.send(());
        }
    })
    .map_err(|e| Error::Usage(format!("cannot watch files: {e}")))?;
    let mut dirs = vec![lab.dir.clone()];
    if variant == Variant::Solution {
        dirs.push(lab.solution_dir.clone());
    }
    for dir in &dirs {
        watcher
            .watch(dir, notify::RecursiveMode::Recursive)
            .map_err(|e| Error::Usage(format!("cannot watch {}: {e}", dir.display())))?;
    }
    let term = Terminal::start(TerminalOptions { console, progress: !vm.quiet });
    let env = engine::prepare(&ws, &opts, &term.sink);
    term.finish();
    let env = env?;
    let mut last = ExitCode::from(1);
    loop {
        let term = Terminal::start(TerminalOptions { console, progress: !vm.quiet });
        let mut run = LabRun::new(variant.clone(), seed);
        let learner = variant == Variant::Starter;
        if learner {
            run.hint_tiers = crate::progress::Progress::load(&ws.root).map(|p| p.tiers(number)).unwrap_or_default();
        }
        let result = crate::every_kernel::run_lab(&env, &lab, &run, everywhere, &term.sink);
        term.finish();
        match result {
            Ok(report) => {
                if learner {
                    crate::learner::after_run(&ws, &lab, &report);
                }
                last = exit_for(&[report]);
            }
            Err(Error::Interrupted) => return Ok(last),
            Err(e) => eprintln!("error: {e}"),
        }
        println!(
            "\nWatching {} for changes: save a file to run again, Ctrl-C to stop.",
            ws.relative(&lab.dir).display()
        );
        while changed.try_recv().is_ok() {}
        loop {
            if crate::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(last);
            }
            if changed.recv_timeout(Duration::from_millis(200)).is_ok() {
                break;
            }
        }
        // Editors write a file in several steps: settle before building.
        while changed.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
}

/// A report for a lab the harness could not run.
fn error_report(lab: &Lab, run: &LabRun, e: &Error) -> LabReport {
    let m = &lab.manifest;
    LabReport {
        number: m.number,
        slug: m.slug.clone(),
        title: m.title.clone(),
        variant: run.variant.name(),
        seed: run.seed,
        notes: Vec::new(),
        kernel: String::new(),
        accel: None,
        passed: false,
        duration_ms: 0,
        boot_ms: 0,
        phases: Default::default(),
        points: 0,
        max_points: m.checks.iter().map(|c| c.points()).sum(),
        checks: Vec::new(),
        console_log: None,
        verifier: None,
        error: Some(e.to_string()),
        kernels: Vec::new(),
    }
}

fn grade(
    submission: Option<PathBuf>,
    seed: Option<u64>,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    vm: &VmArgs,
) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let variant = match submission {
        Some(dir) if dir.join("labs").is_dir() => Variant::Submission(dir),
        Some(dir) => {
            return Err(Error::Usage(format!(
                "{} has no labs/ directory: give the root of the student's checkout",
                dir.display()
            )));
        }
        None => Variant::Starter,
    };
    let labs = if variant == Variant::Starter { ws.starter_labs(options(vm).quiet)? } else { ws.labs()? };
    let default_kernel = ws.kernels()?.default;
    let mut reports = Vec::new();
    let mut harness_error = false;
    for kernel in crate::matrix::kernels_to_run(&ws, vm.kernel.as_deref())? {
        let opts = Options { kernel, ..options(vm) };
        let term = Terminal::start(TerminalOptions { console: false, progress: !vm.quiet });
        let env = engine::prepare(&ws, &opts, &term.sink);
        let env = match env {
            Ok(env) => env,
            Err(e) => {
                term.finish();
                return Err(e);
            }
        };
        for lab in &labs {
            if let Some(reason) = lab.unsupported_on(&env.kernel.name) {
                let _ = term.sink.send(EngineEvent::Note(format!(
                    "lab {} skipped: it does not run on kernel {}: {reason}",
                    lab.number(),
                    env.kernel.name
                )));
                continue;
            }
            let everywhere = crate::every_kernel::covers_matrix(lab, vm.kernel.as_deref());
            // A lab graded on every kernel runs once, over the whole matrix.
            if everywhere && env.kernel.name != default_kernel {
                continue;
            }
            let run = LabRun::new(variant.clone(), seed);
            match crate::every_kernel::run_lab(&env, lab, &run, everywhere, &term.sink) {
                Ok(r) => reports.push(r),
                Err(Error::Interrupted) => {
                    term.finish();
                    return Err(Error::Interrupted);
                }
                Err(e) => {
                    let _ = term.sink.send(EngineEvent::Warning(format!("lab {}: {e}", lab.number())));
                    harness_error = true;
                    reports.push(error_report(lab, &run, &e));
                }
            }
        }
        term.finish();
    }
    let dir = ws.target_dir().join("grade");
    let json = json.unwrap_or_else(|| dir.join("report.json"));
    let junit = junit.unwrap_or_else(|| dir.join("junit.xml"));
    report::write_json(&json, &reports)?;
    report::write_junit(&junit, &reports)?;
    report::write_gradescope(&dir.join("results.json"), &reports)?;
    let summary = report::summary_markdown(&reports);
    report::write_file(&dir.join("summary.md"), summary.as_bytes())?;
    println!("\n{summary}");
    println!(
        "Reports: {}  {}  {}  {} (Gradescope)",
        ws.relative(&json).display(),
        ws.relative(&junit).display(),
        ws.relative(&dir.join("summary.md")).display(),
        ws.relative(&dir.join("results.json")).display()
    );
    if harness_error {
        return Ok(ExitCode::from(2));
    }
    Ok(exit_for(&reports))
}

/// What `verify` concluded about one lab: a line per finding, and how
/// many mutants were caught and how many passed.
struct LabVerdict {
    ok: bool,
    lines: Vec<String>,
    caught: usize,
    missed: usize,
}

/// Runs each variant of `lab` on `jobs` VMs at a time and gives the reports
/// back in the order of `variants`. The runs are independent (each variant
/// has its own overlay, each VM its own sockets, builds take turns under the
/// build lock), so on a machine with two cores two TCG guests nearly halve
/// a lab's verification. With more than one job, each run's events are held
/// back until it ends and then passed on whole, so the terminal never
/// interleaves two runs' steps.
fn run_variants(
    env: &Env,
    lab: &Lab,
    seed: Option<u64>,
    everywhere: bool,
    variants: Vec<Variant>,
    jobs: usize,
    sink: &engine::Sink,
) -> Vec<Result<LabReport>> {
    let run_lab = |variant: Variant, sink: &engine::Sink| {
        crate::every_kernel::run_lab(env, lab, &LabRun::new(variant, seed), everywhere, sink)
    };
    let jobs = jobs.clamp(1, variants.len().max(1));
    if jobs == 1 {
        return variants.into_iter().map(|v| run_lab(v, sink)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<LabReport>>>> =
        variants.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= variants.len() || stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let (held, events) = mpsc::channel();
                    let result = run_lab(variants[i].clone(), &held);
                    drop(held);
                    for ev in events.try_iter() {
                        let _ = sink.send(ev);
                    }
                    // Ctrl-C ends the whole verification, not one run.
                    if matches!(result, Err(Error::Interrupted)) {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner()).unwrap_or(Err(Error::Interrupted)))
        .collect()
}

/// How many VMs `verify` runs at once: `--jobs`, or one per core up to four
/// (a TCG guest keeps one core busy; more than four gains little and
/// costs memory).
fn verify_jobs(asked: Option<usize>) -> usize {
    asked.unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()).min(4)).max(1)
}

fn verify_one(
    env: &Env,
    lab: &Lab,
    seed: Option<u64>,
    mutants: bool,
    everywhere: bool,
    jobs: usize,
    sink: &engine::Sink,
) -> Result<LabVerdict> {
    let patches = if mutants { builder::mutants(lab) } else { Vec::new() };
    let mut variants = vec![Variant::Starter, Variant::Solution];
    variants.extend(patches.iter().cloned().map(Variant::Mutant));
    let mut reports = run_variants(env, lab, seed, everywhere, variants, jobs, sink).into_iter();
    let mut next_report = || reports.next().unwrap_or(Err(Error::Interrupted)).and_then(finished);
    let starter = next_report()?;
    let solution = next_report()?;
    let starter_hint = starter.checks.iter().any(|c| !c.passed && c.hint.is_some());
    let mut v = LabVerdict { ok: true, lines: Vec::new(), caught: 0, missed: 0 };
    let mut finding = |ok: bool, line: String| {
        v.ok &= ok;
        v.lines.push(line);
    };
    match (starter.passed, starter_hint, starter.points) {
        (true, ..) => finding(false, format!("the starter PASSES its checks (seed {})", starter.seed)),
        (false, false, _) => finding(false, "the starter fails without a hint".into()),
        (false, true, p) if p > 0 => {
            finding(false, format!("the untouched starter scores {p} points; it must score 0"))
        }
        _ => finding(
            true,
            format!(
                "starter fails {} of {} checks with a hint, 0 points",
                starter.failed_checks(),
                starter.checks.len()
            ),
        ),
    }
    if solution.passed {
        finding(true, "solution passes".into());
    } else {
        let failed: Vec<&str> = solution.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        finding(false, format!("the solution FAILS: {} (seed {})", failed.join("; "), solution.seed));
    }
    if !mutants {
        return Ok(v);
    }
    if patches.len() < MIN_MUTANTS {
        v.ok = false;
        v.lines.push(format!(
            "only {} mutants in {}; a lab ships at least {MIN_MUTANTS}",
            patches.len(),
            lab.solution_dir.join("mutants").display()
        ));
    }
    for patch in patches {
        let name = builder::mutant_name(&patch);
        let report = next_report()?;
        let compiled = !report.checks.iter().any(|c| c.name == engine::BUILD_CHECK);
        let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        if report.passed {
            v.missed += 1;
            v.ok = false;
            v.lines.push(format!(
                "mutant {name} PASSES every check (seed {}): {}",
                report.seed,
                builder::mutant_summary(&patch)
            ));
        } else if !compiled {
            v.missed += 1;
            v.ok = false;
            v.lines.push(format!("mutant {name} does not compile, so it proves nothing about the checks"));
        } else {
            v.caught += 1;
            v.lines.push(format!("mutant {name} caught by: {}", failed.join("; ")));
        }
    }
    Ok(v)
}

/// Every lab ships at least this many wrong solutions.
pub const MIN_MUTANTS: usize = 5;

fn verify(only: &[u32], seed: Option<u64>, mutants_asked: bool, jobs: Option<usize>, vm: &VmArgs) -> Result<ExitCode> {
    let mutants = mutants_asked;
    let jobs = verify_jobs(jobs);
    let ws = Workspace::discover()?;
    let labs: Vec<Lab> = ws.labs()?.into_iter().filter(|l| only.is_empty() || only.contains(&l.number())).collect();
    if labs.is_empty() {
        return Err(Error::Usage(format!("no lab matches --lab {only:?}")));
    }
    let started = std::time::Instant::now();
    let all = vm.kernel.as_deref() == Some(crate::matrix::ALL);
    let default_kernel = ws.kernels()?.default;
    let mut matrix = crate::matrix::MatrixReport::default();
    let mut lines = Vec::new();
    let (mut passed, mut failed, mut errors, mut caught, mut missed) = (0, 0, 0, 0, 0);
    for kernel in crate::matrix::kernels_to_run(&ws, vm.kernel.as_deref())? {
        // The mutants prove the checks, which do not depend on the kernel:
        // in a matrix run, the default kernel is enough.
        let mutants = mutants && (!all || kernel.as_deref() == Some(default_kernel.as_str()));
        let opts = Options { kernel, ..options(vm) };
        let term = Terminal::start(TerminalOptions { console: false, progress: !vm.quiet });
        let env = match engine::prepare(&ws, &opts, &term.sink) {
            Ok(env) => env,
            Err(e) => {
                term.finish();
                return Err(e);
            }
        };
        let kernel = env.kernel.name.clone();
        if all {
            lines.push(format!("kernel {kernel}:"));
            matrix.kernels.push(crate::matrix::KernelColumn::of(&ws, &kernel)?);
        }
        for lab in &labs {
            let title = format!("lab {:02} {}", lab.number(), lab.manifest.slug);
            if let Some(reason) = lab.unsupported_on(&kernel) {
                lines.push(format!("n/a    {title}: does not run on kernel {kernel}: {reason}"));
                let cell = crate::matrix::Cell::Unsupported { reason: reason.into() };
                matrix.set(&lab.dir_name(), &lab.manifest.title, &kernel, cell);
                continue;
            }
            let everywhere = crate::every_kernel::covers_matrix(lab, vm.kernel.as_deref());
            // A lab graded on every kernel is verified once, over the whole
            // matrix (its mutants too: some are wrong on one kernel only),
            // and its verdict fills every kernel's cell.
            if everywhere && kernel != default_kernel {
                continue;
            }
            let (title, mutants) = if everywhere {
                (format!("{title} (one build, on every kernel)"), mutants_asked)
            } else {
                (title, mutants)
            };
            let cells: Vec<String> = if everywhere && all { ws.kernels()?.names() } else { vec![kernel.clone()] };
            let mut cell = |c: crate::matrix::Cell| {
                for k in &cells {
                    matrix.set(&lab.dir_name(), &lab.manifest.title, k, c.clone());
                }
            };
            match verify_one(&env, lab, seed, mutants, everywhere, jobs, &term.sink) {
                Ok(v) => {
                    caught += v.caught;
                    missed += v.missed;
                    if v.ok {
                        passed += 1;
                        cell(crate::matrix::Cell::Pass);
                    } else {
                        failed += 1;
                        // What went wrong, not what went right.
                        let wrong = v.lines.iter().filter(|l| {
                            !(l.starts_with("starter fails ") || *l == "solution passes" || l.contains(" caught by: "))
                        });
                        cell(crate::matrix::Cell::Fail { detail: wrong.cloned().collect::<Vec<_>>().join("\n") });
                    }
                    lines.push(format!("{} {title}", if v.ok { "ok    " } else { "FAILED" }));
                    lines.extend(v.lines.into_iter().map(|l| format!("         {l}")));
                }
                Err(Error::Interrupted) => {
                    term.finish();
                    return Err(Error::Interrupted);
                }
                Err(e) => {
                    failed += 1;
                    errors += 1;
                    lines.push(format!("ERROR  {title}: {e}"));
                    cell(crate::matrix::Cell::Error { detail: e.to_string() });
                }
            }
        }
        term.finish();
    }
    println!();
    for line in lines {
        println!("{line}");
    }
    if mutants {
        println!("{} labs, {caught} mutants caught, {missed} passed", labs.len());
    }
    println!("{passed} passed, {failed} failed");
    if all {
        matrix.duration_s = started.elapsed().as_secs_f64();
        let (json, md) = matrix.write(&ws)?;
        println!("\n{}", matrix.markdown());
        println!(
            "Matrix run in {:.0} s: {}  {}",
            matrix.duration_s,
            ws.relative(&json).display(),
            ws.relative(&md).display()
        );
    }
    Ok(ExitCode::from(match (failed, errors) {
        (0, _) => 0,
        (_, 0) => 1,
        _ => 2,
    }))
}

fn run(command: &[String], copies: &[PathBuf], timeout: f64, vm: &VmArgs) -> Result<ExitCode> {
    if vm.kernel.as_deref() != Some("all") {
        return run_on(command, copies, timeout, vm);
    }
    let ws = Workspace::discover()?;
    let mut lines = Vec::new();
    let mut first_failure = None;
    for name in ws.kernels()?.names() {
        eprintln!("── kernel {name} ──");
        let one = VmArgs { kernel: Some(name.clone()), ..vm.clone() };
        let (line, code) = match run_on(command, copies, timeout, &one) {
            Ok(code) if code == ExitCode::SUCCESS => (format!("{name:<6} exit 0"), None),
            Ok(code) => (format!("{name:<6} failed ({code:?})"), Some(code)),
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => (format!("{name:<6} VM error: {e}"), Some(ExitCode::from(RUN_HARNESS_ERROR))),
        };
        lines.push(line);
        if first_failure.is_none() {
            first_failure = code;
        }
    }
    eprintln!();
    for line in lines {
        eprintln!("{line}");
    }
    Ok(first_failure.unwrap_or(ExitCode::SUCCESS))
}

fn run_on(command: &[String], copies: &[PathBuf], timeout: f64, vm: &VmArgs) -> Result<ExitCode> {
    // A bound that Duration can hold with room to spare: a day.
    const MAX_TIMEOUT_S: f64 = 86_400.0;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= MAX_TIMEOUT_S) {
        return Err(Error::Usage(format!(
            "--timeout {timeout}: give a number of seconds above 0 and at most {MAX_TIMEOUT_S} (a day)"
        )));
    }
    let ws = Workspace::discover()?;
    let mut opts = options(vm);
    // The command's output is the point: keep labctl's own lines off stdout.
    opts.quiet = true;
    let (tx, rx) = mpsc::channel();
    let printer = thread::spawn(move || {
        use std::io::Write;
        for ev in rx {
            match ev {
                EngineEvent::Output { stream: Stream::Stdout, data, .. } => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(data.as_bytes());
                    let _ = out.flush();
                }
                EngineEvent::Output { stream: Stream::Stderr, data, .. } => {
                    let _ = std::io::stderr().write_all(data.as_bytes());
                }
                EngineEvent::Warning(w) => eprintln!("labctl: warning: {w}"),
                _ => {}
            }
        }
    });
    let name = format!("run.{}", std::process::id());
    let cwd = std::env::current_dir().map_err(Error::io("reading the current directory"))?;
    let result = engine::prepare(&ws, &opts, &tx).and_then(|env| {
        let rp = crate::runcmd::run_plan(command, copies, &cwd, timeout, |path| env.base.contains(path))?;
        let req = RunRequest {
            plan: &rp.plan,
            binaries: &[],
            files: &rp.files,
            modules: &[],
            console: Console::Captured,
            total: Duration::from_secs_f64(timeout + 5.0),
            name: &name,
        };
        env.run_plan(&req, &tx)
    });
    drop(tx);
    let _ = printer.join();
    let (vm_run, _) = result?;
    // The command's own ending counts; a VM that ended without one is a
    // harness error (125), never the command's status.
    let ended = engine::step_results(&vm_run.events).remove("run");
    let step = match (ended, vm_run.end.error(&vm_run.log)) {
        (Some(step), _) => step,
        (None, Some(e)) => return Err(e),
        (None, None) => {
            return Err(Error::VmDied { message: "the command never reported an end".into(), log: vm_run.log.clone() });
        }
    };
    if let Some(e) = step.spawn_error {
        eprintln!("labctl: cannot run {e}");
        return Ok(ExitCode::from(127));
    }
    if step.timed_out {
        eprintln!("labctl: the command timed out after {timeout} s and was killed");
        return Ok(ExitCode::from(124));
    }
    Ok(match (step.exit_code, step.signal) {
        (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::from(RUN_HARNESS_ERROR),
    })
}

fn shell(lab_number: Option<u32>, solution: bool, vm: &VmArgs) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let mut opts = options(vm);
    opts.quiet = true;
    // With a lab: its binaries, built as a lab run builds them (the given
    // files as the lab ships them), and the modules it declares.
    let (binaries, modules) = match lab_number {
        Some(number) => {
            let lab = if solution { ws.lab(number)? } else { ws.starter_lab(number, opts.quiet)? };
            let variant = if solution { Variant::Solution } else { Variant::Starter };
            eprintln!("Building lab {number} ({})…", variant.name());
            let built = builder::build_lab(&ws, &lab, &variant, opts.quiet)?;
            for note in &built.notes {
                eprintln!("note: {note}");
            }
            match built.build {
                builder::LabBuild::Built(bins) => (bins, lab.manifest.modules.clone()),
                builder::LabBuild::Failed(output) => {
                    eprintln!(
                        "{}\nLab {number} does not compile: fix the errors above, then try again.",
                        output.trim_end()
                    );
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let (tx, rx) = mpsc::channel::<EngineEvent>();
    let warnings = thread::spawn(move || {
        for ev in rx {
            if let EngineEvent::Warning(w) = ev {
                eprintln!("labctl: warning: {w}");
            }
        }
    });
    let env = engine::prepare(&ws, &opts, &tx)?;
    eprintln!("Booting kernel {} ({}); type `exit` to power off.", env.kernel.name, env.accel.name());
    if let Some(number) = lab_number {
        let names: Vec<String> =
            binaries.iter().filter_map(|b| b.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
        eprintln!(
            "Lab {number}'s programs are in {}: {}. Try `bpftool prog` or `cat /sys/kernel/tracing/trace_pipe`.",
            workbook_agent::LAB_BIN_DIR,
            names.join(", ")
        );
    }
    let plan = Plan { shell: true, ..Plan::default() };
    // A day: the shell ends when the user says so.
    let req = RunRequest {
        plan: &plan,
        binaries: &binaries,
        files: &[],
        modules: &modules,
        console: Console::Interactive,
        total: Duration::from_secs(86_400),
        name: "shell",
    };
    let result = env.run_plan(&req, &tx);
    drop(tx);
    let _ = warnings.join();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `labctl seal`: writes labs/given.lock; with `check`, only says whether
/// it matches the working tree (exit 1 when it does not, for CI).
fn seal(check: bool) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let labs = ws.labs()?;
    let lock = crate::seal::LOCK;
    if !check {
        let (files, labs) = crate::seal::write(&ws.root, &labs)?.counts();
        println!("Sealed {files} given files of {labs} labs in {lock}");
        return Ok(ExitCode::SUCCESS);
    }
    let stale = crate::seal::check(&ws.root, &labs)?;
    if stale.is_empty() {
        println!("{lock} matches the labs' given files");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{lock} does not match the labs' given files:");
    for s in &stale {
        eprintln!("  {s}");
    }
    eprintln!("If the labs changed on purpose, run `just seal` and commit {lock}.");
    Ok(ExitCode::from(1))
}

fn doctor() -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let findings = crate::doctor::findings(&ws);
    for f in &findings {
        println!("{:<8} {:<20} {}", if f.ok { "ok" } else { "MISSING" }, f.what, f.detail);
    }
    let missing = findings.iter().filter(|f| !f.ok).count();
    if missing == 0 {
        println!("Everything labctl needs is here.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{missing} missing: ./setup.sh installs all of them.");
        Ok(ExitCode::from(1))
    }
}

fn kernels(fetch: bool, update: bool, mirror: Option<&str>, quiet: bool) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let opts = crate::kernels::FetchOptions { mirror, quiet };
    crate::kernels::command(&ws.root.join("vm/kernels.toml"), &ws.cache_dir(), fetch, update, &opts)?;
    Ok(ExitCode::SUCCESS)
}

fn matrix(json: bool) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let report = crate::matrix::MatrixReport::load(&ws)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a matrix report serialises"));
    } else {
        print!("{}", report.markdown());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn hint(number: u32) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let lab = ws.lab(number)?;
    println!("Lab {:02} · {}\nGoal: {}\n", number, lab.manifest.title, lab.manifest.goal);
    for (index, check) in lab.manifest.checks.iter().enumerate() {
        println!("{}", check.name);
        for (tier, hint) in lab.hint_templates(index).iter().enumerate() {
            println!("  hint {}: {hint}", tier + 1);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list() -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    for lab in ws.labs()? {
        let m = &lab.manifest;
        println!(
            "{:02}  ch{:<2} {:<7} {:<22} {}",
            m.number,
            m.chapter,
            format!("{:?}", m.kind).to_lowercase(),
            m.slug,
            m.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_runs_as_many_vms_as_asked_and_by_default_one_per_core_up_to_four() {
        assert_eq!(verify_jobs(Some(3)), 3);
        assert_eq!(verify_jobs(Some(0)), 1);
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(verify_jobs(None), cores.min(4));
    }

    #[test]
    fn jobs_on_the_command_line_must_be_at_least_one() {
        assert!(Cli::try_parse_from(["labctl", "verify", "-j", "0"]).is_err());
        let cli = Cli::try_parse_from(["labctl", "verify", "--jobs", "2", "--lab", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Verify { jobs: Some(2), .. }));
    }
}
