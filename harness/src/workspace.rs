//! Where the project lives and what is in it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kernels::Matrix;
use crate::manifest::{self, Lab};
use crate::seal::{self, Given, Seal};

/// Where one VM run keeps its console log and listens for its events.
/// Dropping it removes the socket and frees the name.
#[derive(Debug)]
pub struct RunFiles {
    pub log: PathBuf,
    pub socket: PathBuf,
    stem: String,
}

static RUN_NAMES_IN_USE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl Drop for RunFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        RUN_NAMES_IN_USE.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| *s != self.stem);
    }
}

/// How many run directories of finished labctl processes are kept.
pub const KEEP_RUN_DIRS: usize = 20;

/// The checkout labctl works on.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    /// `$WORKBOOK_ROOT`, else the nearest directory above the current one
    /// that holds `vm/kernels.toml` and `labs/`.
    pub fn discover() -> Result<Self> {
        if let Some(root) = std::env::var_os("WORKBOOK_ROOT") {
            return Self::at(PathBuf::from(root));
        }
        let cwd = std::env::current_dir().map_err(Error::io("reading the current directory"))?;
        cwd.ancestors()
            .find(|d| d.join("vm/kernels.toml").is_file() && d.join("labs").is_dir())
            .map(|d| Workspace { root: d.to_path_buf() })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{} is not inside an eBPF Workbook checkout (no vm/kernels.toml and labs/ above it); \
                     cd into the checkout or set WORKBOOK_ROOT",
                    cwd.display()
                ))
            })
    }

    pub fn at(root: PathBuf) -> Result<Self> {
        if root.join("vm/kernels.toml").is_file() {
            Ok(Workspace { root })
        } else {
            Err(Error::Usage(format!("{} has no vm/kernels.toml: not an eBPF Workbook checkout", root.display())))
        }
    }

    pub fn kernels(&self) -> Result<Matrix> {
        Matrix::load(&self.root.join("vm/kernels.toml"))
    }

    pub fn labs(&self) -> Result<Vec<Lab>> {
        let names = self.kernels()?.names();
        Ok(manifest::load_all(&self.root, &names, crate::checks::named::validate_args)?)
    }

    pub fn lab(&self, number: u32) -> Result<Lab> {
        find(self.labs()?, number)
    }

    /// The labs as a run of the learner's own work reads them: a lab.toml
    /// that differs from `labs/given.lock` is read from its sealed
    /// original, so that an edited manifest can neither drop a check nor
    /// make a given file the student's. [`Self::labs`] reads the working
    /// tree, for lab authors (the solution, the mutants, `verify`).
    pub fn starter_labs(&self, quiet: bool) -> Result<Vec<Lab>> {
        let names = self.kernels()?.names();
        let seal = Seal::load(&self.root)?;
        let labs_dir = self.root.join("labs");
        let entries = std::fs::read_dir(&labs_dir).map_err(Error::io(format!("listing {}", labs_dir.display())))?;
        let mut labs = Vec::new();
        for dir in entries.flatten().map(|e| e.path()).filter(|d| d.is_dir()) {
            let path = dir.join("lab.toml");
            let is_sealed = seal::repo_path(&self.root, &path).is_some_and(|k| seal.get(&k).is_some());
            if !is_sealed && !path.is_file() {
                continue;
            }
            let text = match seal::given_file(&self.root, &seal, &path, quiet)? {
                Given::Intact(text) | Given::Restored { content: text, .. } => text,
                Given::Unsealed => {
                    return Err(Error::Usage(format!(
                        "{} is not in {}: if you are adding this lab, run `just seal`",
                        self.relative(&path).display(),
                        seal::LOCK
                    )));
                }
            };
            let text = String::from_utf8(text).map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
            labs.push(manifest::load_text(&self.root, &dir, &text, &names, crate::checks::named::validate_args)?);
        }
        // No check for two labs of one number: `labctl seal` seals only
        // labs that load together, and an unsealed lab.toml is refused.
        labs.sort_by_key(|l| l.manifest.number);
        Ok(labs)
    }

    /// Lab `number` as a run of the learner's own work reads it (see
    /// [`Self::starter_labs`]).
    pub fn starter_lab(&self, number: u32, quiet: bool) -> Result<Lab> {
        find(self.starter_labs(quiet)?, number)
    }

    /// Cargo's target directory, shared by labs and their solution overlays.
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| self.root.join("target"))
    }

    /// Downloads, images and logs; never committed.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("vm/cache")
    }

    /// Per-run files: a directory per labctl process (see [`Self::run_dir`]).
    pub fn runs_dir(&self) -> PathBuf {
        self.target_dir().join("labctl/runs")
    }

    /// This process's directory for the console logs and event sockets of
    /// its VMs, so that two labctl processes never share one.
    pub fn run_dir(&self) -> PathBuf {
        self.run_dir_of(std::process::id())
    }

    /// The run directory of the labctl process `pid`.
    pub fn run_dir_of(&self, pid: u32) -> PathBuf {
        self.runs_dir().join(pid.to_string())
    }

    /// Creates this process's run directory and, once per process, removes
    /// the directories of finished processes beyond the newest
    /// [`KEEP_RUN_DIRS`], so that their console logs stay around a while.
    pub fn create_run_dir(&self) -> Result<PathBuf> {
        static PRUNED: std::sync::Once = std::sync::Once::new();
        let dir = self.run_dir();
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        PRUNED.call_once(|| prune_run_dirs(&self.runs_dir(), KEEP_RUN_DIRS));
        Ok(dir)
    }

    /// A console log and an events socket for one VM run named `name`, in
    /// this process's run directory. While they are held, another run of
    /// this process with the same name (on another thread) gets a number;
    /// a later run reuses the name, and its log replaces the earlier one.
    pub fn run_files(&self, name: &str) -> Result<RunFiles> {
        let dir = self.create_run_dir()?;
        let stem = {
            let mut used = RUN_NAMES_IN_USE.lock().unwrap_or_else(|p| p.into_inner());
            let stem = (1..)
                .map(|n| if n == 1 { name.to_string() } else { format!("{name}-{n}") })
                .find(|s| !used.contains(s))
                .expect("an unused name");
            used.push(stem.clone());
            stem
        };
        let mut socket = dir.join(format!("{stem}.sock"));
        // A Unix socket's path has a small limit (108 bytes on Linux).
        if socket.as_os_str().len() > 100 {
            socket = std::env::temp_dir().join(format!("labctl-{}-{stem}.sock", std::process::id()));
        }
        Ok(RunFiles { log: dir.join(format!("{stem}.console.log")), socket, stem })
    }

    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

fn find(labs: Vec<Lab>, number: u32) -> Result<Lab> {
    let known: Vec<String> = labs.iter().map(|l| l.number().to_string()).collect();
    labs.into_iter()
        .find(|l| l.number() == number)
        .ok_or_else(|| Error::Usage(format!("there is no lab {number}; the labs are {}", known.join(", "))))
}

/// Removes run directories (named by pid) of processes that no longer
/// exist, oldest first, keeping `keep` of them.
fn prune_run_dirs(runs: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(runs) else { return };
    let mut finished: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            // A live process (or one that reuses the pid) keeps its directory.
            if Path::new(&format!("/proc/{pid}")).exists() {
                return None;
            }
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    finished.sort();
    let excess = finished.len().saturating_sub(keep);
    for (_, dir) in finished.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(dir);
    }
}
