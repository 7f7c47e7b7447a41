use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = labctl::cli::Cli::parse();
    labctl::cli::main(cli)
}
