//! Where the project lives and what is in it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kernels::Matrix;
use crate::manifest::{self, Lab};

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
        Ok(manifest::load_all(&self.root, &names)?)
    }

    pub fn lab(&self, number: u32) -> Result<Lab> {
        let labs = self.labs()?;
        let known: Vec<String> = labs.iter().map(|l| l.number().to_string()).collect();
        labs.into_iter()
            .find(|l| l.number() == number)
            .ok_or_else(|| Error::Usage(format!("there is no lab {number}; the labs are {}", known.join(", "))))
    }

    /// Cargo's target directory, shared by labs and their solution overlays.
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| self.root.join("target"))
    }

    /// Downloads, images and logs; never committed.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("vm/cache")
    }

    /// Per-run files: console logs, sockets, reports.
    pub fn runs_dir(&self) -> PathBuf {
        self.target_dir().join("labctl/runs")
    }

    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}
