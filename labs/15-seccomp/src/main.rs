//! `seccomp-run DENY COMMAND [ARGS...]`: run COMMAND under a seccomp filter
//! that makes the catalogue syscalls listed in DENY fail with EPERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((deny, command)) = args.split_first() else {
        eprintln!("usage: seccomp-run DENY COMMAND [ARGS...] (DENY: catalogue indices, as in \"3 7 11\")");
        return ExitCode::from(2);
    };
    match lab15_seccomp::run(deny, command) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("seccomp-run: {e:#}");
            ExitCode::from(2)
        }
    }
}
