//! Every external program labctl runs goes through here, so that the user
//! sees the command line (`> cargo build …`) and failures name the program.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use crate::Error;

/// The command line as a user could paste it.
pub fn display(cmd: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            format!("'{}'", s.replace('\'', "'\\''"))
        } else {
            s.into_owned()
        }
    };
    std::iter::once(quote(cmd.get_program())).chain(cmd.get_args().map(quote)).collect::<Vec<_>>().join(" ")
}

/// Prints the command line to stderr unless `quiet`.
pub fn announce(cmd: &Command, quiet: bool) {
    if !quiet {
        eprintln!("> {}", display(cmd));
    }
}

/// Runs `cmd` to completion, capturing its output; a non-zero exit is an
/// error carrying its stderr.
pub fn output(cmd: &mut Command, quiet: bool) -> Result<Output, Error> {
    announce(cmd, quiet);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| spawn_error(cmd, e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: display(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        })
    }
}

/// Runs `cmd` with its output going to the user's terminal.
pub fn status(cmd: &mut Command, quiet: bool) -> Result<(), Error> {
    announce(cmd, quiet);
    let status = cmd.stdin(Stdio::null()).status().map_err(|e| spawn_error(cmd, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command { command: display(cmd), status: status.to_string(), stderr: String::new() })
    }
}

/// A program that could not be started at all: usually not installed.
pub fn spawn_error(cmd: &Command, e: std::io::Error) -> Error {
    let program = cmd.get_program().to_string_lossy().into_owned();
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Missing { what: program.clone(), fix: crate::tools::install_hint(&program) }
    } else {
        Error::Command { command: display(cmd), status: format!("could not start: {e}"), stderr: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-append", "console=ttyS0 panic=-1", "it's"]);
        assert_eq!(display(&cmd), "qemu-system-x86_64 -append 'console=ttyS0 panic=-1' 'it'\\''s'");
    }
}
