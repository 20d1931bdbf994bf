//! The `detect` binary: parse arguments, run the command, report errors with exit code 2.
use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before any thread starts: candle's thread count and the allocator (see `process`).
    detect::process::configure();
    let cli = detect::cli::Cli::parse();
    match detect::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", detect::report::error_chain(&err));
            std::process::ExitCode::from(2)
        }
    }
}
