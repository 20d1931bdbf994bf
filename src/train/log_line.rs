//! The plain log line `detect train` prints every `--log-period` iterations when stdout is not
//! a terminal (a log file, CI, `nohup`), where the progress bar is not seen. detectron2's
//! layout: ETA, iteration, total and component losses, seconds per iteration, data time, LR.
//!
//! ```text
//! eta: 0:01:23  iter: 40/1000  total_loss: 1.2340  loss_classifier: 0.4000  ...
//!     time: 0.3012 s/iter  data_time: 0.0021  lr: 2.000e-2       (all on one line)
//! ```

/// What one log line reports.
#[derive(Debug, Clone, Copy)]
pub struct LogLine<'a> {
    /// Iterations completed.
    pub iteration: u64,
    pub max_iter: u64,
    /// `(name, value)` of each loss component, in the model's order.
    pub losses: &'a [(&'a str, f64)],
    /// Mean seconds per iteration over the last log window, and the data part of it.
    pub seconds_per_iteration: f64,
    pub data_seconds: f64,
    /// Data-parallel: the part in collective calls (`all_reduce: 0.0123` after `data_time`).
    pub all_reduce_seconds: Option<f64>,
    pub lr: f64,
}

impl std::fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let left = self.max_iter.saturating_sub(self.iteration) as f64;
        let total: f64 = self.losses.iter().map(|(_, v)| v).sum();
        write!(
            f,
            "eta: {}  iter: {}/{}  total_loss: {total:.4}",
            hours_minutes_seconds(left * self.seconds_per_iteration),
            self.iteration,
            self.max_iter
        )?;
        for (name, value) in self.losses {
            write!(f, "  {name}: {value:.4}")?;
        }
        write!(
            f,
            "  time: {:.4} s/iter  data_time: {:.4}",
            self.seconds_per_iteration, self.data_seconds
        )?;
        if let Some(s) = self.all_reduce_seconds {
            write!(f, "  all_reduce: {s:.4}")?;
        }
        write!(f, "  lr: {:.3e}", self.lr)
    }
}

/// `H:MM:SS`, rounded to the second (Python's `str(timedelta)` without the fraction).
pub fn hours_minutes_seconds(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests;
