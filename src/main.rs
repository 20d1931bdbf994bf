//! The `detect` binary: parse arguments, run the command, report errors with exit code 2.
use clap::Parser;

fn main() -> std::process::ExitCode {
    // candle's CPU element-wise ops fan out to a spinning thread pool; on small tensors, and
    // whenever the cores are shared, the spinning costs more than it saves (the shapes quick
    // start trains 3x faster with one such thread). Matrix products and our convolution
    // kernels keep using every core (RAYON_NUM_THREADS). Set before any thread starts;
    // CANDLE_NUM_THREADS overrides it.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let cli = detect::cli::Cli::parse();
    match detect::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", detect::report::error_chain(&err));
            std::process::ExitCode::from(2)
        }
    }
}
