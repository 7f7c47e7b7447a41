//! Harness errors: what went wrong on the host or with the VM, as opposed
//! to a check that failed (a verdict). Every one maps to exit code 2.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("{what} is not installed. Install it with: {fix}")]
    Missing { what: String, fix: String },
    #[error("`{command}` failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(":\n{stderr}") })]
    Command { command: String, status: String, stderr: String },
    #[error("{0}")]
    Usage(String),
    #[error("kernel: {0}")]
    Kernel(String),
    #[error("the VM did not boot: {message}\n  console log: {}", log.display())]
    Boot { message: String, log: PathBuf },
    #[error("the guest kernel panicked: {message}\n  console log: {}", log.display())]
    KernelPanic { message: String, log: PathBuf },
    #[error("the VM ran for longer than its limit of {seconds} s and was stopped\n  console log: {}", log.display())]
    VmTimeout { seconds: f64, log: PathBuf },
    #[error("the VM ended before the lab finished: {message}\n  console log: {}", log.display())]
    VmDied { message: String, log: PathBuf },
    /// A run the harness could not finish, as its report says.
    #[error("{0}")]
    Run(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
