//! `syscall-census [COMMAND [ARGS...]]`: run COMMAND (default `echo hello`)
//! and print a table of the system calls it made, like `strace -c`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = vec!["echo".into(), "hello".into()];
    }
    match lab01_syscall_census::run(&args) {
        Ok(census) => {
            // The table goes to stderr, as strace prints it, so that the
            // traced command's own output on stdout stays clean.
            eprint!("{}", census.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("syscall-census: {e:#}");
            ExitCode::from(2)
        }
    }
}
