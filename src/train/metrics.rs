//! `metrics.jsonl`: one JSON object per line, appended as training goes.
//!
//! ```text
//! {"type":"train","iteration":20,"losses":{"loss_box_reg":0.21,"loss_classifier":0.40,...},
//!  "total_loss":1.05,"lr":0.00039,"seconds_per_iteration":1.8,"data_seconds":0.05}
//!  (data-parallel runs add "all_reduce_seconds":0.02)
//! {"type":"eval","iteration":5000,"metrics":{"AP":0.31,"AP50":0.52,...}}
//! ```
//! `iteration` counts completed iterations, so resuming from the checkpoint of iteration N keeps
//! the lines with `iteration <= N` ([`MetricsLog::resume`]) and the file reads as one run.
//! Each line is flushed when written, so a crash loses at most the line being written.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;

/// One training log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Iterations completed.
    pub iteration: u64,
    /// Each loss component by name (`loss_objectness`, `loss_rpn_box_reg`, `loss_classifier`,
    /// `loss_box_reg`).
    pub losses: BTreeMap<String, f64>,
    /// The sum of the components (the value that was back-propagated).
    pub total_loss: f64,
    /// The learning rate of the last iteration.
    pub lr: f64,
    /// Wall-clock seconds per iteration since the previous line.
    pub seconds_per_iteration: f64,
    /// Of which waiting for data, per iteration.
    pub data_seconds: f64,
    /// Data-parallel only: of which in the collective calls (the gradient all-reduce and the
    /// sample-count sum after the forward pass, waiting for the slowest rank included), per
    /// iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_reduce_seconds: Option<f64>,
}

impl TrainRecord {
    /// A record of `losses` (`(name, value)`, e.g. `Losses::values()`); the total is their sum.
    pub fn new(
        iteration: u64,
        losses: &[(&str, f64)],
        lr: f64,
        seconds_per_iteration: f64,
        data_seconds: f64,
    ) -> Self {
        Self {
            iteration,
            losses: losses.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            total_loss: losses.iter().map(|(_, v)| v).sum(),
            lr,
            seconds_per_iteration,
            data_seconds,
            all_reduce_seconds: None,
        }
    }
}

/// One evaluation log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Iterations completed when the model was evaluated.
    pub iteration: u64,
    /// COCO metrics by name (`AP`, `AP50`, `AP75`, `APs`, `APm`, `APl`, ...).
    pub metrics: BTreeMap<String, f64>,
}

/// A line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Train(TrainRecord),
    Eval(EvalRecord),
}

impl Record {
    pub fn iteration(&self) -> u64 {
        match self {
            Record::Train(r) => r.iteration,
            Record::Eval(r) => r.iteration,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a metrics record: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetricsError + '_ {
    move |source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every record of a `metrics.jsonl` (an empty or missing file has none). A final line
/// cut short by a crash is ignored; a bad line elsewhere is an error naming it.
pub fn read_records(path: &Path) -> Result<Vec<Record>, MetricsError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(io_err(path))?;
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(e) if i + 1 == lines.len() && e.is_eof() => break,
            Err(source) => {
                return Err(MetricsError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok(records)
}

/// The appender for `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Starts a new log (an existing file is replaced).
    pub fn create(path: &Path) -> Result<Self, MetricsError> {
        let file = File::create(path).map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Continues a log after resuming from the checkpoint of `iteration`: lines logged after it
    /// (by the interrupted run, past its last checkpoint) are dropped.
    pub fn resume(path: &Path, iteration: u64) -> Result<Self, MetricsError> {
        let kept: Vec<Record> = read_records(path)?
            .into_iter()
            .filter(|r| r.iteration() <= iteration)
            .collect();
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).expect("records serialise"));
            text.push('\n');
        }
        write_atomic(path, text.as_bytes()).map_err(io_err(path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one line and flushes it.
    pub fn append(&mut self, record: &Record) -> Result<(), MetricsError> {
        let mut line = serde_json::to_string(record).expect("records serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(io_err(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
