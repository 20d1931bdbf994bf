//! The `detect` binary: parse arguments, run the command, report errors with exit code 2.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = detect::cli::Cli::parse();
    match detect::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
