//! What the user sees and does while training runs: a progress bar with ETA and the current
//! losses (indicatif), and Ctrl-C, which asks the loop to save a checkpoint and stop cleanly
//! (a second Ctrl-C exits at once, code 130).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The training progress bar. On a terminal it redraws in place on stderr; elsewhere (CI, a
/// log file) it is hidden and [`TrainProgress::println`] still prints.
pub struct TrainProgress {
    bar: ProgressBar,
}

impl TrainProgress {
    /// A bar for iterations `start..max_iter` (`start` > 0 when resuming).
    pub fn new(start: u64, max_iter: u64) -> Self {
        Self::with_target(start, max_iter, ProgressDrawTarget::stderr())
    }

    /// A bar that draws nothing (tests, `--quiet`).
    pub fn hidden(start: u64, max_iter: u64) -> Self {
        Self::with_target(start, max_iter, ProgressDrawTarget::hidden())
    }

    fn with_target(start: u64, max_iter: u64, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(max_iter), target);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} it, ETA {eta_precise}  {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(start);
        bar.reset_eta();
        bar.enable_steady_tick(Duration::from_millis(500));
        Self { bar }
    }

    /// Moves the bar to `iteration` completed iterations and shows the losses and LR.
    pub fn update(&self, iteration: u64, losses: &[(&str, f64)], lr: f64) {
        self.bar.set_position(iteration);
        self.bar.set_message(format_losses(losses, lr));
    }

    /// Moves the bar with only the total loss known (iterations that read no components).
    pub fn update_total(&self, iteration: u64, total: f64, lr: f64) {
        self.bar.set_position(iteration);
        self.bar.set_message(format!("loss {total:.3} lr {lr:.2e}"));
    }

    /// Prints a line above the bar (or plainly to stderr when the bar is hidden).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.bar.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            self.bar.println(line.as_ref());
        }
    }

    /// Stops redrawing and leaves the final state on screen.
    pub fn finish(&self) {
        self.bar.disable_steady_tick();
        self.bar.abandon();
    }
}

/// `loss 1.234 (box_reg 0.210, classifier 0.400, ...) lr 2.00e-2`: the total, then each
/// component in the given order with its `loss_` prefix dropped.
pub fn format_losses(losses: &[(&str, f64)], lr: f64) -> String {
    let total: f64 = losses.iter().map(|(_, v)| v).sum();
    let parts: Vec<String> = losses
        .iter()
        .map(|(name, v)| format!("{} {v:.3}", name.strip_prefix("loss_").unwrap_or(name)))
        .collect();
    format!("loss {total:.3} ({}) lr {lr:.2e}", parts.join(", "))
}

/// A stop request the training loop polls once per iteration.
#[derive(Clone)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

static CTRL_C: OnceLock<Arc<AtomicBool>> = OnceLock::new();

impl Interrupt {
    /// Routes Ctrl-C (SIGINT, and SIGTERM where ctrlc handles it) to a stop request. Installing
    /// twice in one process returns the same flag, cleared.
    pub fn install() -> Result<Self, ctrlc::Error> {
        if let Some(flag) = CTRL_C.get() {
            flag.store(false, Ordering::SeqCst);
            return Ok(Self { flag: flag.clone() });
        }
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting without saving");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: saving a checkpoint after this iteration (Ctrl-C again to quit now)"
            );
        })?;
        let _ = CTRL_C.set(flag.clone());
        Ok(Self { flag })
    }

    /// A request no signal sets: for tests and callers that stop programmatically.
    pub fn manual() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Asks the loop to stop.
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests;
