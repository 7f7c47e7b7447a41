//! `--kernel all`: every lab on every kernel of the matrix, and the
//! compatibility table made from such a run (never written by hand: the
//! book and the README show what `labctl verify --kernel all` found).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels;
use crate::workspace::Workspace;

/// What `--kernel` takes to mean every kernel of the matrix.
pub const ALL: &str = "all";

/// The kernels a run covers: every one of the matrix for `all`, in its
/// order, else the one asked for (None: the default).
pub fn kernels_to_run(ws: &Workspace, wanted: Option<&str>) -> Result<Vec<Option<String>>> {
    Ok(match wanted {
        Some(ALL) => ws.kernels()?.names().into_iter().map(Some).collect(),
        other => vec![other.map(str::to_string)],
    })
}

/// One kernel of a matrix run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelColumn {
    pub name: String,
    pub suite: String,
    /// Debian version of the package that ran.
    pub version: String,
    /// `uname -r`.
    pub release: String,
}

impl KernelColumn {
    /// The column of matrix kernel `name`, as fetched now.
    pub fn of(ws: &Workspace, name: &str) -> Result<Self> {
        let matrix = ws.kernels()?;
        let spec = matrix.get(name).ok_or_else(|| Error::Usage(format!("no kernel {name} in vm/kernels.toml")))?;
        let used = kernels::state(spec, &ws.cache_dir())?.used;
        Ok(KernelColumn { name: name.into(), suite: used.suite, version: used.version, release: used.release })
    }
}

/// What a lab did on one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell {
    /// Verified: the starter fails with a hint and the solution passes.
    Pass,
    /// Verification found something wrong.
    Fail { detail: String },
    /// The lab's manifest says it does not run on this kernel.
    Unsupported { reason: String },
    /// The harness could not run it.
    Error { detail: String },
}

/// A lab's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRow {
    /// `NN-slug`.
    pub lab: String,
    pub title: String,
    /// By kernel name.
    pub cells: BTreeMap<String, Cell>,
}

/// A whole matrix run: `target/verify/matrix.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    pub kernels: Vec<KernelColumn>,
    pub labs: Vec<LabRow>,
    /// Wall time of the run.
    pub duration_s: f64,
}

impl MatrixReport {
    pub fn set(&mut self, lab: &str, title: &str, kernel: &str, cell: Cell) {
        let row = match self.labs.iter().position(|r| r.lab == lab) {
            Some(i) => &mut self.labs[i],
            None => {
                self.labs.push(LabRow { lab: lab.into(), title: title.into(), cells: BTreeMap::new() });
                self.labs.last_mut().expect("just pushed")
            }
        };
        row.cells.insert(kernel.into(), cell);
    }

    pub fn passed(&self) -> bool {
        self.labs.iter().flat_map(|r| r.cells.values()).all(|c| matches!(c, Cell::Pass | Cell::Unsupported { .. }))
    }

    /// Where a matrix run leaves its results.
    pub fn paths(ws: &Workspace) -> (PathBuf, PathBuf) {
        let dir = ws.target_dir().join("verify");
        (dir.join("matrix.json"), dir.join("matrix.md"))
    }

    /// The report of the last matrix run.
    pub fn load(ws: &Workspace) -> Result<Self> {
        let (json, _) = Self::paths(ws);
        let text = std::fs::read_to_string(&json).map_err(|e| {
            Error::Usage(format!("no matrix run to show ({}: {e}); run: labctl verify --kernel all", json.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", json.display())))
    }

    pub fn write(&self, ws: &Workspace) -> Result<(PathBuf, PathBuf)> {
        let (json, md) = Self::paths(ws);
        let text = serde_json::to_string_pretty(self).expect("a matrix report serialises");
        crate::report::write_file(&json, text.as_bytes())?;
        crate::report::write_file(&md, self.markdown().as_bytes())?;
        Ok((json, md))
    }

    /// The compatibility table: a row per lab, a column per kernel.
    pub fn markdown(&self) -> String {
        let cell_text = |cell: Option<&Cell>| match cell {
            Some(Cell::Pass) => "pass".to_string(),
            Some(Cell::Fail { detail }) => format!("**fails**: {}", one_line(detail)),
            Some(Cell::Unsupported { reason }) => format!("n/a: {}", one_line(reason)),
            Some(Cell::Error { detail }) => format!("**error**: {}", one_line(detail)),
            None => "not run".to_string(),
        };
        let mut out = String::from("| lab |");
        for k in &self.kernels {
            out.push_str(&format!(" {} |", k.name));
        }
        out.push_str("\n|---|");
        out.push_str(&":-:|".repeat(self.kernels.len()));
        out.push('\n');
        for row in &self.labs {
            out.push_str(&format!("| {} |", row.lab));
            for k in &self.kernels {
                out.push_str(&format!(" {} |", cell_text(row.cells.get(&k.name))));
            }
            out.push('\n');
        }
        out.push('\n');
        for k in &self.kernels {
            out.push_str(&format!("- **{}**: Debian {}, `{}` ({})\n", k.name, k.suite, k.release, k.version));
        }
        out
    }
}

/// Text that fits in a table cell: its first line, without pipes.
fn one_line(text: &str) -> String {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let short: String = first.chars().take(120).collect();
    let short = if short.len() < first.len() { format!("{short}…") } else { short };
    short.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, release: &str) -> KernelColumn {
        KernelColumn { name: name.into(), suite: "bookworm".into(), version: "1-1".into(), release: release.into() }
    }

    #[test]
    fn the_table_has_a_row_per_lab_and_a_column_per_kernel() {
        let mut m = MatrixReport {
            kernels: vec![column("5.10", "5.10.0-32-cloud-amd64"), column("6.1", "6.1.0-56-cloud-amd64")],
            ..MatrixReport::default()
        };
        m.set("01-census", "Census", "5.10", Cell::Pass);
        m.set("01-census", "Census", "6.1", Cell::Pass);
        m.set("02-loop", "Loop", "5.10", Cell::Unsupported { reason: "bpf_loop() | appeared in 5.17".into() });
        m.set("02-loop", "Loop", "6.1", Cell::Fail { detail: "the solution FAILS: x\nmore".into() });
        assert!(!m.passed());
        assert_eq!(
            m.markdown(),
            "| lab | 5.10 | 6.1 |\n\
             |---|:-:|:-:|\n\
             | 01-census | pass | pass |\n\
             | 02-loop | n/a: bpf_loop() \\| appeared in 5.17 | **fails**: the solution FAILS: x |\n\
             \n\
             - **5.10**: Debian bookworm, `5.10.0-32-cloud-amd64` (1-1)\n\
             - **6.1**: Debian bookworm, `6.1.0-56-cloud-amd64` (1-1)\n"
        );
        m.set("02-loop", "Loop", "6.1", Cell::Pass);
        assert!(m.passed(), "a lab that does not apply is no failure");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""status":"unsupported","reason":"#), "{json}");
        assert_eq!(serde_json::from_str::<MatrixReport>(&json).unwrap(), m);
    }
}
