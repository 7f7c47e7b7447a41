//! `labs/NN-slug/lab.toml`: the single source of truth for a lab.
//!
//! Parsing (serde, unknown fields rejected) and validation are separate
//! steps; every error names the file and the field.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::params::{self, ParamSpec};

/// Default bound on one whole VM run of a lab, in seconds.
pub const DEFAULT_LAB_TIMEOUT_S: f64 = 120.0;
/// Default bound on one step, in seconds.
pub const DEFAULT_STEP_TIMEOUT_S: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabKind {
    /// A user-space exercise built on ptrace(2).
    Ptrace,
    /// An eBPF program loaded with libbpf-rs or raw bpf(2).
    Ebpf,
}

/// A lab's manifest as written in `lab.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lab number; the directory is `NN-slug`.
    pub number: u32,
    pub slug: String,
    pub title: String,
    /// Chapter of the book the lab belongs to.
    pub chapter: u32,
    pub kind: LabKind,
    /// One sentence: what the student builds.
    pub goal: String,
    /// Kernels of `vm/kernels.toml` the lab cannot run on, each with the
    /// reason (`[unsupported]` then `"5.10" = "bpf_loop() appeared in
    /// 5.17"`): runs on the whole matrix skip them, and the compatibility
    /// table shows the reason. Default: none, the lab runs on every kernel.
    #[serde(default)]
    pub unsupported: BTreeMap<String, String>,
    /// Graded on every kernel of the matrix from one build (a CO-RE lab):
    /// `labctl lab N` builds once, runs that build on each kernel, and the
    /// lab passes only when it passes on all of them. `--kernel K` still
    /// runs it on K alone. Default: false, the default kernel.
    #[serde(default)]
    pub every_kernel: bool,
    /// Parameters added to the guest kernel's command line, on every
    /// kernel, for a lab that needs a boot-time setting (`lsm=...,bpf` on
    /// kernels whose default LSM list lacks bpf). Default: none.
    #[serde(default)]
    pub kernel_cmdline: Vec<String>,
    /// Linux security modules that must be active in the guest (`["bpf"]`
    /// for a BPF LSM lab): the harness reads the guest's list before the
    /// first step and stops with a harness error, not a verdict, when one
    /// is missing (see [`crate::lsm`]). Default: none.
    #[serde(default)]
    pub requires_lsm: Vec<String>,
    /// Kernel modules (names, without `.ko`) loaded before the first step.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Bound on the whole VM run, in seconds. Default: 120.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Guest files sent back after the last step, readable by checks.
    #[serde(default)]
    pub collect: Vec<String>,
    /// The files (relative to the lab directory) the student is meant to
    /// change. Every other file is given by the lab: grading builds with
    /// the lab's own copy of it, so an edit there cannot change a verdict.
    pub student_files: Vec<String>,
    /// Workload parameters drawn from each run's seed (see [`params`]);
    /// steps and checks use them as `{{name}}`.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    #[serde(default, rename = "steps")]
    pub steps: Vec<StepSpec>,
    #[serde(default, rename = "checks")]
    pub checks: Vec<CheckSpec>,
}

/// One command run in the guest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: String,
    /// Program and arguments, run directly (no shell). Lab binaries live in
    /// `/lab/bin`. An argument that is one integer template (`"{{n}}"`)
    /// renders as an integer and is taken as its text.
    #[serde(deserialize_with = "words")]
    pub run: Vec<String>,
    /// Seconds before the step is killed. Default: 30.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// User ID. Default: 0 (root).
    #[serde(default)]
    pub uid: u32,
    /// Group ID. Default: the user ID. Where identity matters, give one
    /// that differs from `uid`, so that a uid/gid mix-up shows.
    #[serde(default)]
    pub gid: Option<u32>,
    /// Keep running while later steps run. Default: false.
    #[serde(default)]
    pub background: bool,
    /// For a background step: regex to wait for on its output.
    #[serde(default)]
    pub ready: Option<String>,
    #[serde(default, deserialize_with = "word_values")]
    pub env: std::collections::BTreeMap<String, String>,
    /// Print the step's output in the terminal report, for output that is
    /// the point of the lab (a table, a measurement). Default: false.
    #[serde(default)]
    pub show: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The step's exit status: `equals` or `not_equals`.
    ExitCode,
    /// The step's output: `contains`, `not_contains`, `regex`.
    Output,
    /// A JSON document the step printed: `pointer` with `equals` or `any`.
    Json,
    /// A check written in Rust (`check = "name"`, with `args`).
    Named,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamSel {
    #[default]
    Stdout,
    Stderr,
    /// stdout followed by stderr.
    Both,
}

/// One check. Which fields apply depends on `kind`; validation says when a
/// field is missing or does not belong.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    /// The step whose result is checked (every kind but some named checks).
    #[serde(default)]
    pub step: Option<String>,
    /// Weight in `labctl grade`. Default: 1, or 0 for a precondition.
    #[serde(default)]
    pub points: Option<u32>,
    /// A check that a starter passes by construction (it attaches, it
    /// runs): shown, required for a pass, but worth no points.
    #[serde(default)]
    pub precondition: bool,
    /// Tiered hints: the first is shown when the check fails, the rest by
    /// `labctl hint N`.
    #[serde(default)]
    pub hints: Vec<String>,
    /// The same tiers in Korean, shown instead when the locale or `--lang`
    /// asks for Korean ([`HintLanguage`]); one for each of `hints`.
    #[serde(default)]
    pub hints_ko: Vec<String>,
    #[serde(default)]
    pub stream: StreamSel,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default)]
    pub not_equals: Option<serde_json::Value>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub not_contains: Vec<String>,
    #[serde(default)]
    pub regex: Vec<String>,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub any: Option<serde_json::Value>,
    #[serde(default)]
    pub check: Option<String>,
    #[serde(default)]
    pub args: toml::Table,
}

impl CheckSpec {
    pub fn points(&self) -> u32 {
        self.points.unwrap_or(if self.precondition { 0 } else { 1 })
    }
}

/// The language of the hints labctl shows. Process-wide, set once by the
/// command line before any lab is loaded; labs loaded afterwards carry the
/// hints of that language in [`CheckSpec::hints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HintLanguage {
    #[default]
    English,
    Korean,
}

static HINTS_IN_KOREAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl HintLanguage {
    /// The language a locale variable names: Korean for `ko`, `ko_KR.UTF-8`
    /// and the like, English otherwise.
    pub fn from_locale(locale: &str) -> HintLanguage {
        if locale == "ko" || locale.starts_with("ko_") || locale.starts_with("ko.") || locale.starts_with("ko@") {
            HintLanguage::Korean
        } else {
            HintLanguage::English
        }
    }

    /// The locale's language, as C programs find it: the first of
    /// `LC_ALL`, `LC_MESSAGES` and `LANG` that is set and not empty.
    pub fn from_env() -> HintLanguage {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|value| !value.is_empty())
            .map_or(HintLanguage::English, |locale| HintLanguage::from_locale(&locale))
    }

    pub fn set(self) {
        HINTS_IN_KOREAN.store(self == HintLanguage::Korean, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn current() -> HintLanguage {
        if HINTS_IN_KOREAN.load(std::sync::atomic::Ordering::Relaxed) {
            HintLanguage::Korean
        } else {
            HintLanguage::English
        }
    }

    /// The lab.toml field holding a check's hints in this language.
    pub fn hints_field(self) -> &'static str {
        match self {
            HintLanguage::English => "hints",
            HintLanguage::Korean => "hints_ko",
        }
    }
}

impl Manifest {
    /// Puts the hints of `language` in every check's `hints`.
    pub fn localize(&mut self, language: HintLanguage) {
        if language == HintLanguage::Korean {
            for check in &mut self.checks {
                check.hints = std::mem::take(&mut check.hints_ko);
            }
        }
    }
}

/// A lab: its manifest and where it lives.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The manifest rendered with seed 0: its structure (steps, checks,
    /// names, points) is the same for every seed.
    pub manifest: Manifest,
    /// `lab.toml` as written, templates and all, for [`Lab::for_seed`].
    pub raw: toml::Table,
    /// `labs/NN-slug`.
    pub dir: PathBuf,
    /// `solutions/NN-slug`.
    pub solution_dir: PathBuf,
    /// `labs/NN-slug/lab.toml`.
    pub path: PathBuf,
}

impl Lab {
    pub fn number(&self) -> u32 {
        self.manifest.number
    }
    /// Why the lab does not run on the matrix kernel `kernel`, if it does not.
    pub fn unsupported_on(&self, kernel: &str) -> Option<&str> {
        self.manifest.unsupported.get(kernel).map(String::as_str)
    }
    pub fn dir_name(&self) -> String {
        format!("{:02}-{}", self.manifest.number, self.manifest.slug)
    }
    pub fn timeout_s(&self) -> f64 {
        self.manifest.timeout_s.unwrap_or(DEFAULT_LAB_TIMEOUT_S)
    }

    /// The manifest with the workload of `seed`. Validation rendered seed
    /// 0 already; parameters draw only integers, letters and picked values,
    /// so any other seed renders too.
    pub fn for_seed(&self, seed: u64) -> Result<Manifest, ManifestError> {
        let mut manifest = render(&self.path, &self.raw, seed)?;
        manifest.localize(HintLanguage::current());
        Ok(manifest)
    }

    /// The hints of check `index` as written, each `{{param}}` shown as
    /// `<param>`: outside a run no workload was drawn.
    pub fn hint_templates(&self, index: usize) -> Vec<String> {
        let field = HintLanguage::current().hints_field();
        let written = self.raw.get("checks").and_then(|c| c.get(index)).and_then(|c| c.get(field));
        written
            .and_then(|h| h.as_array())
            .map(|tiers| tiers.iter().filter_map(|t| t.as_str()).map(params::placeholders).collect())
            .unwrap_or_default()
    }

    /// Whether `rel` (relative to the lab directory) is the student's to change.
    pub fn is_student_file(&self, rel: &Path) -> bool {
        self.manifest.student_files.iter().any(|f| Path::new(f) == rel)
    }
}

/// A manifest that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    pub path: PathBuf,
    /// The field at fault, as a path (`checks[2].step`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {}: {}", self.path.display(), field, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Parses `text` as the manifest at `path`, rendered with seed 0 (no
/// validation beyond the parameters').
pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    render(path, &parse_raw(path, text)?, 0)
}

/// Parses `text` as TOML, templates unrendered.
pub fn parse_raw(path: &Path, text: &str) -> Result<toml::Table, ManifestError> {
    toml::from_str(text).map_err(|e| ManifestError {
        path: path.to_path_buf(),
        field: None,
        message: e.to_string().trim_end().to_string(),
    })
}

/// Draws the parameters for `seed` and renders every template of the
/// manifest with them.
pub fn render(path: &Path, raw: &toml::Table, seed: u64) -> Result<Manifest, ManifestError> {
    let err = |field: String, message: String| ManifestError { path: path.to_path_buf(), field: Some(field), message };
    let specs: BTreeMap<String, ParamSpec> = match raw.get("params") {
        Some(p) => p.clone().try_into().map_err(|e: toml::de::Error| err("params".into(), e.message().into()))?,
        None => BTreeMap::new(),
    };
    params::validate(&specs).map_err(|(name, m)| err(format!("params.{name}"), m))?;
    let values = params::draw(&specs, seed);
    let mut rest = raw.clone();
    let param_table = rest.remove("params");
    let mut rendered = params::render_table(&rest, &values, "").map_err(|(f, m)| err(f, m))?;
    if let Some(p) = param_table {
        rendered.insert("params".into(), p);
    }
    rendered.try_into().map_err(|e: toml::de::Error| ManifestError {
        path: path.to_path_buf(),
        field: None,
        message: e.to_string().trim_end().to_string(),
    })
}

/// Checks everything serde cannot: references between steps and checks,
/// regexes, names, ranges. `dir_name` is the lab directory's name;
/// `known_kernels` the names in the kernel matrix.
/// Validates a named check's `args` against the lab's step names; given by
/// the caller (the checks module's registry), so that the manifest does not
/// depend on the checks that read it.
pub type NamedArgs = fn(&str, &toml::Table, &HashSet<&str>) -> Result<(), String>;

pub fn validate(
    path: &Path,
    m: &Manifest,
    dir_name: &str,
    known_kernels: &[String],
    named: NamedArgs,
) -> Result<(), ManifestError> {
    let err = |field: &str, message: String| ManifestError {
        path: path.to_path_buf(),
        field: Some(field.to_string()),
        message,
    };
    if !(1..=99).contains(&m.number) {
        return Err(err("number", format!("{} is not in 1..=99", m.number)));
    }
    let slug_ok = !m.slug.is_empty()
        && m.slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !m.slug.starts_with('-')
        && !m.slug.ends_with('-');
    if !slug_ok {
        return Err(err("slug", format!("{:?} must be lowercase letters, digits and single dashes", m.slug)));
    }
    let expected_dir = format!("{:02}-{}", m.number, m.slug);
    if dir_name != expected_dir {
        return Err(err(
            "slug",
            format!(
                "number {} and slug {:?} say the directory is {expected_dir:?}, but it is {dir_name:?}",
                m.number, m.slug
            ),
        ));
    }
    if m.title.trim().is_empty() {
        return Err(err("title", "must not be empty".into()));
    }
    if m.goal.trim().is_empty() {
        return Err(err("goal", "must not be empty".into()));
    }
    if !(1..=11).contains(&m.chapter) {
        return Err(err("chapter", format!("{} is not a chapter of the book (1..=11)", m.chapter)));
    }
    if m.every_kernel && !m.unsupported.is_empty() {
        return Err(err("every_kernel", "a lab graded on every kernel cannot leave some out ([unsupported])".into()));
    }
    for (k, reason) in &m.unsupported {
        let field = format!("unsupported.{k:?}");
        if !known_kernels.contains(k) {
            return Err(err(&field, format!("{k:?} is not in vm/kernels.toml (known: {})", known_kernels.join(", "))));
        }
        if reason.trim().is_empty() {
            return Err(err(&field, "say why the lab does not run on this kernel".into()));
        }
    }
    for (i, item) in m.kernel_cmdline.iter().enumerate() {
        if item.is_empty() || item.contains(char::is_whitespace) {
            return Err(err(&format!("kernel_cmdline[{i}]"), format!("{item:?} is not one kernel parameter")));
        }
    }
    for (i, name) in m.requires_lsm.iter().enumerate() {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(err(
                &format!("requires_lsm[{i}]"),
                format!("{name:?} is not the name of an LSM, e.g. \"bpf\""),
            ));
        }
    }
    if let Some(t) = m.timeout_s {
        check_timeout("timeout_s", t, 1800.0).map_err(|msg| err("timeout_s", msg))?;
    }
    if m.student_files.is_empty() {
        return Err(err("student_files", "name the files the student edits, e.g. [\"src/bpf/hello.bpf.c\"]".into()));
    }
    for (i, f) in m.student_files.iter().enumerate() {
        let p = Path::new(f);
        if f.is_empty() || p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(err(&format!("student_files[{i}]"), format!("{f:?} is not a path inside the lab directory")));
        }
        if f == "lab.toml" || f == "Cargo.toml" || f == "build.rs" {
            return Err(err(&format!("student_files[{i}]"), format!("{f} is the grader's, never the student's")));
        }
    }
    if m.steps.is_empty() {
        return Err(err("steps", "a lab needs at least one [[steps]] entry".into()));
    }
    let mut step_names = HashSet::new();
    for (i, s) in m.steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if s.name.trim().is_empty() {
            return Err(err(&at("name"), "must not be empty".into()));
        }
        if s.name == crate::lsm::STEP {
            return Err(err(&at("name"), format!("{:?} is the harness's own step", s.name)));
        }
        if !step_names.insert(s.name.as_str()) {
            return Err(err(&at("name"), format!("{:?} is used by another step", s.name)));
        }
        if s.run.is_empty() || s.run[0].is_empty() {
            return Err(err(&at("run"), "needs a program, e.g. run = [\"/lab/bin/hello\"]".into()));
        }
        if let Some(t) = s.timeout_s {
            check_timeout("timeout_s", t, 600.0).map_err(|msg| err(&at("timeout_s"), msg))?;
        }
        if let Some(r) = &s.ready {
            if !s.background {
                return Err(err(&at("ready"), "only a background step can have a ready pattern".into()));
            }
            Regex::new(r).map_err(|e| err(&at("ready"), format!("not a valid regex: {e}")))?;
        }
    }
    steps_fit_in_the_lab(m).map_err(|msg| err("timeout_s", msg))?;
    if m.checks.is_empty() {
        return Err(err("checks", "a lab needs at least one [[checks]] entry".into()));
    }
    let mut check_names = HashSet::new();
    for (i, c) in m.checks.iter().enumerate() {
        validate_check(c, &step_names, named).map_err(|(f, msg)| err(&format!("checks[{i}].{f}"), msg))?;
        if !check_names.insert(c.name.as_str()) {
            return Err(err(&format!("checks[{i}].name"), format!("{:?} is used by another check", c.name)));
        }
    }
    Ok(())
}

/// A string, or an integer taken as its decimal text: a command argument
/// or an environment value that is one template (`"{{count}}"`) keeps the
/// parameter's integer type when rendered.
#[derive(Deserialize)]
#[serde(untagged)]
enum Word {
    Text(String),
    Number(i64),
}

impl From<Word> for String {
    fn from(w: Word) -> String {
        match w {
            Word::Text(s) => s,
            Word::Number(n) => n.to_string(),
        }
    }
}

fn words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Word>::deserialize(d)?.into_iter().map(String::from).collect())
}

fn word_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(BTreeMap::<String, Word>::deserialize(d)?.into_iter().map(|(k, v)| (k, v.into())).collect())
}

/// The longest the steps can keep the agent busy: every foreground step's
/// timeout, and every background step's wait for its `ready` pattern. It
/// must fit in the lab's `timeout_s`, so that a step that hangs is stopped
/// by its own timeout (a verdict) and never by the whole VM's (a harness
/// error, with the later steps MISSING).
fn steps_fit_in_the_lab(m: &Manifest) -> Result<(), String> {
    let blocking: Vec<(&str, f64)> = m
        .steps
        .iter()
        .filter(|s| !s.background || s.ready.is_some())
        .map(|s| (s.name.as_str(), s.timeout_s.unwrap_or(DEFAULT_STEP_TIMEOUT_S)))
        .collect();
    let worst: f64 = blocking.iter().map(|(_, t)| t).sum();
    let limit = m.timeout_s.unwrap_or(DEFAULT_LAB_TIMEOUT_S);
    if worst <= limit {
        return Ok(());
    }
    let parts: Vec<String> = blocking.iter().map(|(name, t)| format!("{name} {t}")).collect();
    Err(format!(
        "the steps can take {worst} s (foreground timeouts and ready waits: {}), more than the lab's \
         {limit} s{}: raise timeout_s or lower the steps' timeout_s",
        parts.join(", "),
        if m.timeout_s.is_none() { " (the default)" } else { "" }
    ))
}

fn check_timeout(_field: &str, t: f64, max: f64) -> Result<(), String> {
    if t.is_finite() && t > 0.0 && t <= max {
        Ok(())
    } else {
        Err(format!("{t} is not a number of seconds in (0, {max}]"))
    }
}

/// Validates one check; the error is (field, message).
fn validate_check(c: &CheckSpec, steps: &HashSet<&str>, named: NamedArgs) -> Result<(), (&'static str, String)> {
    if c.name.trim().is_empty() {
        return Err(("name", "must not be empty".into()));
    }
    if c.precondition && c.points.is_some_and(|p| p > 0) {
        return Err(("points", "a precondition is worth no points: the starter passes it by construction".into()));
    }
    if c.hints.len() < 2 || c.hints.iter().any(|h| h.trim().is_empty()) {
        return Err(("hints", "give at least two tiers of hints: a nudge first, then a more explicit one".into()));
    }
    if c.hints_ko.len() != c.hints.len() || c.hints_ko.iter().any(|h| h.trim().is_empty()) {
        return Err((
            "hints_ko",
            format!(
                "give the {} tier(s) of `hints` in Korean too, one non-empty string each, in the same order \
                 ({} given)",
                c.hints.len(),
                c.hints_ko.iter().filter(|h| !h.trim().is_empty()).count()
            ),
        ));
    }
    if let Some(s) = &c.step {
        if !steps.contains(s.as_str()) {
            let mut known: Vec<_> = steps.iter().copied().collect();
            known.sort();
            return Err(("step", format!("{s:?} is not a step of this lab (steps: {})", known.join(", "))));
        }
    } else if c.kind != CheckKind::Named {
        return Err(("step", "names the step whose result is checked".into()));
    }
    // Fields that belong to other kinds are mistakes, not silently ignored.
    let used: &[(&'static str, bool)] = &[
        ("equals", c.equals.is_some()),
        ("not_equals", c.not_equals.is_some()),
        ("contains", !c.contains.is_empty()),
        ("not_contains", !c.not_contains.is_empty()),
        ("regex", !c.regex.is_empty()),
        ("pointer", c.pointer.is_some()),
        ("any", c.any.is_some()),
        ("check", c.check.is_some()),
        ("args", !c.args.is_empty()),
    ];
    let allowed: &[&str] = match c.kind {
        CheckKind::ExitCode => &["equals", "not_equals"],
        CheckKind::Output => &["contains", "not_contains", "regex"],
        CheckKind::Json => &["pointer", "equals", "any"],
        CheckKind::Named => &["check", "args"],
    };
    for (field, present) in used {
        if *present && !allowed.contains(field) {
            return Err((
                field,
                format!("does not apply to a check of kind {:?} (it takes: {})", c.kind, allowed.join(", ")),
            ));
        }
    }
    match c.kind {
        CheckKind::ExitCode => {
            for (f, v) in [("equals", &c.equals), ("not_equals", &c.not_equals)] {
                if let Some(v) = v {
                    if v.as_i64().is_none() {
                        return Err((f, format!("{v} is not an integer exit code")));
                    }
                }
            }
            if c.equals.is_none() == c.not_equals.is_none() {
                return Err(("equals", "give exactly one of equals or not_equals".into()));
            }
        }
        CheckKind::Output => {
            if c.contains.is_empty() && c.not_contains.is_empty() && c.regex.is_empty() {
                return Err(("contains", "give at least one of contains, not_contains, regex".into()));
            }
            for r in &c.regex {
                Regex::new(r).map_err(|e| ("regex", format!("{r:?} is not a valid regex: {e}")))?;
            }
        }
        CheckKind::Json => {
            if let Some(p) = &c.pointer {
                if !(p.is_empty() || p.starts_with('/')) {
                    return Err(("pointer", format!("{p:?} is not a JSON pointer (\"\" or \"/a/0/b\")")));
                }
            }
            if c.equals.is_none() == c.any.is_none() {
                return Err(("equals", "give exactly one of equals or any".into()));
            }
        }
        CheckKind::Named => {
            let Some(name) = &c.check else {
                // The registry's own error for no name lists the names.
                let known = named("", &c.args, steps).err().unwrap_or_default();
                return Err(("check", format!("names a built-in check: {known}")));
            };
            named(name, &c.args, steps).map_err(|m| ("args", m))?;
        }
    }
    Ok(())
}

/// Reads, parses and validates `labs/*/lab.toml` under `root`, sorted by number.
pub fn load_all(root: &Path, known_kernels: &[String], named: NamedArgs) -> Result<Vec<Lab>, ManifestError> {
    let labs_dir = root.join("labs");
    let entries = std::fs::read_dir(&labs_dir).map_err(|e| ManifestError {
        path: labs_dir.clone(),
        field: None,
        message: format!("cannot list the labs: {e}"),
    })?;
    let mut labs = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let path = dir.join("lab.toml");
        if !path.is_file() {
            continue;
        }
        labs.push(load(root, &dir, known_kernels, named)?);
    }
    labs.sort_by_key(|l| l.manifest.number);
    for pair in labs.windows(2) {
        if pair[0].number() == pair[1].number() {
            return Err(ManifestError {
                path: pair[1].path.clone(),
                field: Some("number".into()),
                message: format!("lab number {} is also used by {}", pair[1].number(), pair[0].path.display()),
            });
        }
    }
    Ok(labs)
}

/// Reads one lab directory.
pub fn load(root: &Path, dir: &Path, known_kernels: &[String], named: NamedArgs) -> Result<Lab, ManifestError> {
    let path = dir.join("lab.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| ManifestError {
        path: path.clone(),
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    load_text(root, dir, &text, known_kernels, named)
}

/// Reads one lab directory whose lab.toml is `text`, which need not be the
/// file's content (the sealed original of an edited lab.toml).
pub fn load_text(
    root: &Path,
    dir: &Path,
    text: &str,
    known_kernels: &[String],
    named: NamedArgs,
) -> Result<Lab, ManifestError> {
    let path = dir.join("lab.toml");
    let raw = parse_raw(&path, text)?;
    let manifest = render(&path, &raw, 0)?;
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    validate(&path, &manifest, &dir_name, known_kernels, named)?;
    let mut manifest = manifest;
    manifest.localize(HintLanguage::current());
    for (i, f) in manifest.student_files.iter().enumerate() {
        if !dir.join(f).is_file() {
            return Err(ManifestError {
                path: path.clone(),
                field: Some(format!("student_files[{i}]")),
                message: format!("{f} is not a file of {}", dir.display()),
            });
        }
    }
    Ok(Lab { solution_dir: root.join("solutions").join(&dir_name), dir: dir.to_path_buf(), path, manifest, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
number = 3
slug = "hello-world"
title = "Hello"
chapter = 2
kind = "ebpf"
goal = "Say hello."
student_files = ["src/bpf/hello.bpf.c"]

[[steps]]
name = "hello"
run = ["/lab/bin/hello"]
background = true
ready = "Attached"

[[steps]]
name = "uname"
run = ["/bin/uname"]

[[checks]]
name = "says hello"
kind = "output"
step = "hello"
regex = ["Hello World.*uname"]
hints = ["one", "two"]
hints_ko = ["하나", "둘"]
"#;

    fn path() -> PathBuf {
        PathBuf::from("labs/03-hello-world/lab.toml")
    }

    fn check(text: &str) -> Result<Manifest, ManifestError> {
        let m = parse(&path(), text)?;
        validate(&path(), &m, "03-hello-world", &["6.1".to_string()], crate::checks::named::validate_args)?;
        Ok(m)
    }

    fn error_of(text: &str) -> String {
        check(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_manifest_parses_with_defaults() {
        let m = check(GOOD).unwrap();
        assert_eq!(m.kind, LabKind::Ebpf);
        assert_eq!(m.steps[1].timeout_s, None);
        assert_eq!(m.checks[0].points(), 1);
        assert_eq!(m.checks[0].stream, StreamSel::Stdout);
    }

    #[test]
    fn an_unknown_field_is_named_with_the_file() {
        let err = error_of(&GOOD.replace("goal =", "gaol = \"x\"\ngoal ="));
        assert!(err.starts_with("labs/03-hello-world/lab.toml:"), "{err}");
        assert!(err.contains("gaol"), "{err}");
    }

    #[test]
    fn a_check_on_a_missing_step_names_the_field_and_the_steps() {
        let err = error_of(&GOOD.replace("step = \"hello\"", "step = \"helo\""));
        assert!(err.contains("checks[0].step") && err.contains("\"helo\"") && err.contains("hello, uname"), "{err}");
    }

    #[test]
    fn a_bad_regex_is_reported_at_its_field() {
        let err = error_of(&GOOD.replace("Hello World.*uname", "Hello ("));
        assert!(err.contains("checks[0].regex") && err.contains("not a valid regex"), "{err}");
    }

    #[test]
    fn fields_of_another_kind_are_refused() {
        let err = error_of(&GOOD.replace("regex = [", "equals = 0\nregex = ["));
        assert!(err.contains("checks[0].equals") && err.contains("does not apply"), "{err}");
    }

    #[test]
    fn one_hint_is_not_enough() {
        let err = error_of(&GOOD.replace("hints = [\"one\", \"two\"]", "hints = [\"one\"]"));
        assert!(err.contains("checks[0].hints"), "{err}");
    }

    #[test]
    fn every_hint_tier_needs_its_korean_tier() {
        for korean in
            ["", "hints_ko = [\"하나\"]", "hints_ko = [\"하나\", \" \"]", "hints_ko = [\"하나\", \"둘\", \"셋\"]"]
        {
            let err = error_of(&GOOD.replace("hints_ko = [\"하나\", \"둘\"]", korean));
            assert!(err.contains("labs/03-hello-world/lab.toml"), "{err}");
            assert!(err.contains("checks[0].hints_ko") && err.contains("2 tier(s)"), "{korean}: {err}");
        }
    }

    #[test]
    fn korean_hints_replace_the_english_ones_when_asked_for() {
        let mut m = check(GOOD).unwrap();
        m.localize(HintLanguage::English);
        assert_eq!(m.checks[0].hints, ["one", "two"]);
        m.localize(HintLanguage::Korean);
        assert_eq!(m.checks[0].hints, ["하나", "둘"]);
    }

    #[test]
    fn the_locale_decides_the_hint_language() {
        for korean in ["ko", "ko_KR.UTF-8", "ko_KR", "ko.UTF-8", "ko_KR@euro"] {
            assert_eq!(HintLanguage::from_locale(korean), HintLanguage::Korean, "{korean}");
        }
        for english in ["", "C", "C.UTF-8", "en_US.UTF-8", "kok_IN", "POSIX"] {
            assert_eq!(HintLanguage::from_locale(english), HintLanguage::English, "{english}");
        }
    }

    #[test]
    fn the_directory_must_match_number_and_slug() {
        let m = parse(&path(), GOOD).unwrap();
        let err =
            validate(&path(), &m, "04-hello-world", &[], crate::checks::named::validate_args).unwrap_err().to_string();
        assert!(err.contains("slug") && err.contains("\"03-hello-world\""), "{err}");
    }

    #[test]
    fn step_timeouts_must_fit_in_the_labs() {
        // hello waits up to 30 s for "Attached", uname up to 30 s: 60 > 50.
        let err = error_of(&GOOD.replace("kind = \"ebpf\"", "kind = \"ebpf\"\ntimeout_s = 50"));
        assert!(err.starts_with("labs/03-hello-world/lab.toml: timeout_s: the steps can take 60 s"), "{err}");
        assert!(err.contains("hello 30, uname 30"), "{err}");
        check(&GOOD.replace("kind = \"ebpf\"", "kind = \"ebpf\"\ntimeout_s = 60")).unwrap();
    }

    #[test]
    fn ready_needs_a_background_step_and_kernels_must_be_known() {
        let err = error_of(&GOOD.replace("background = true\n", ""));
        assert!(err.contains("steps[0].ready"), "{err}");
        let err = error_of(&format!("{GOOD}\n[unsupported]\n\"4.19\" = \"too old\"\n"));
        assert!(err.contains("unsupported.\"4.19\"") && err.contains("6.1"), "{err}");
        let err = error_of(&format!("{GOOD}\n[unsupported]\n\"6.1\" = \" \"\n"));
        assert!(err.contains("say why"), "{err}");
        let err = error_of(&GOOD.replace("kind = \"ebpf\"", "kind = \"ebpf\"\nkernel_cmdline = [\"lsm=bpf quiet\"]"));
        assert!(err.contains("kernel_cmdline[0]"), "{err}");
    }

    #[test]
    fn named_checks_validate_their_arguments() {
        let named = GOOD.replace(
            "kind = \"output\"\nstep = \"hello\"\nregex = [\"Hello World.*uname\"]",
            "kind = \"named\"\ncheck = \"strace_table\"\nargs = { expected = \"hello\", actual = \"nope\" }",
        );
        let err = error_of(&named);
        assert!(err.contains("checks[0].args") && err.contains("nope"), "{err}");
        let unknown = named.replace("strace_table", "no_such_check");
        assert!(error_of(&unknown).contains("strace_table"));
    }

    const SEEDED: &str = r#"
[params]
runs = { int = [2, 9] }
user = { int = [2000, 2999] }
group = { int = [2000, 2999], not = ["user"] }

[[steps]]
name = "work"
run = ["/bin/sh", "-c", "seq {{runs}}", "{{runs}}"]
uid = "{{user}}"
gid = "{{group}}"
"#;

    #[test]
    fn a_seed_renders_the_same_workload_every_time_and_another_seed_another() {
        let text = GOOD.replace("[[steps]]\nname = \"uname\"", &format!("{SEEDED}\n[[steps]]\nname = \"uname\""));
        let raw = parse_raw(&path(), &text).unwrap();
        let a = render(&path(), &raw, 42).unwrap();
        assert_eq!(a.steps[1].run, render(&path(), &raw, 42).unwrap().steps[1].run);
        let step = &a.steps[1];
        assert!(step.run[2].starts_with("seq ") && (2000..3000).contains(&step.uid));
        let runs: u32 = step.run[3].parse().expect("a whole-template word of a command line stays a word");
        assert!((2..=9).contains(&runs));
        let whole = text.replace("\"seq {{runs}}\"]", "\"seq\", \"{{runs}}\"]");
        let b = render(&path(), &parse_raw(&path(), &whole).unwrap(), 42).unwrap();
        assert_eq!(b.steps[1].run[3], a.steps[1].run[2].trim_start_matches("seq "), "an integer argument is its text");
        assert_ne!(step.gid, Some(step.uid), "gid must differ from uid");
        let differ = (0..10).filter(|s| render(&path(), &raw, *s).unwrap().steps[1].uid != step.uid).count();
        assert!(differ >= 8, "other seeds drew the same uid {differ} times of 10");
    }

    #[test]
    fn an_unknown_parameter_is_named_with_its_field() {
        let text = GOOD.replace("run = [\"/bin/uname\"]", "run = [\"/bin/uname\", \"{{nope}}\"]");
        let err = error_of(&text);
        assert!(err.contains("steps[1].run[1]") && err.contains("nope"), "{err}");
    }

    #[test]
    fn a_precondition_is_worth_nothing() {
        let m = check(&GOOD.replace("hints = [\"one\", \"two\"]", "precondition = true\nhints = [\"one\", \"two\"]"))
            .unwrap();
        assert_eq!(m.checks[0].points(), 0);
        let err = error_of(&GOOD.replace("hints = [\"one\"", "precondition = true\npoints = 2\nhints = [\"one\""));
        assert!(err.contains("checks[0].points"), "{err}");
    }

    #[test]
    fn student_files_must_stay_inside_the_lab_and_off_the_graders_files() {
        let err = error_of(&GOOD.replace("[\"src/bpf/hello.bpf.c\"]", "[\"../x.rs\"]"));
        assert!(err.contains("student_files[0]"), "{err}");
        let err = error_of(&GOOD.replace("[\"src/bpf/hello.bpf.c\"]", "[\"lab.toml\"]"));
        assert!(err.contains("grader"), "{err}");
    }

    #[test]
    fn every_lab_in_the_repository_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let kernels = crate::kernels::Matrix::load(&root.join("vm/kernels.toml")).unwrap().names();
        let labs = load_all(root, &kernels, crate::checks::named::validate_args).unwrap();
        assert!(labs.iter().any(|l| l.number() == 1) && labs.iter().any(|l| l.number() == 3));
    }
}
