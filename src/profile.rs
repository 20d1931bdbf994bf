//! `--profile`: time per stage of one training iteration or one predicted image, and the
//! host↔device transfers it made ([`heads::ops::transfer`]).
//!
//! A [`StageClock`] is passed down the step; each stage calls [`StageClock::lap`] when it
//! ends. When profiling is off a lap does nothing. When it is on, a lap waits for the device
//! (`Device::synchronize`: CUDA work is asynchronous, so without it a stage's time would land
//! in whichever later stage first reads a value) and records the time since the previous lap.
//! Profiling therefore slows a GPU step a little; it is off by default.
use std::fmt;
use std::time::Instant;

use candle_core::Device;
use heads::ops::transfer::{Recorder, TransferRecord};

/// A part of a training iteration or of an inference forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the batch (decode, transform) and uploading it.
    Data,
    /// ResNet/ResNeXt body + FPN.
    Backbone,
    /// RPN head, anchors, proposals (+ its losses in training).
    Rpn,
    /// RoI pooling, box head, losses or post-processing.
    RoiHeads,
    /// `backward()` of the total loss (training).
    Backward,
    /// Summing the gradients over the data-parallel workers (training with several).
    AllReduce,
    /// Gradient clipping and the SGD step (training).
    Optimizer,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Data => "data",
            Stage::Backbone => "backbone",
            Stage::Rpn => "rpn",
            Stage::RoiHeads => "roi_heads",
            Stage::Backward => "backward",
            Stage::AllReduce => "all_reduce",
            Stage::Optimizer => "optimizer",
        }
    }
}

/// Stage times of one iteration (see the module docs).
#[derive(Debug)]
pub struct StageClock {
    /// `Some` when profiling: the device to wait for at each lap.
    device: Option<Device>,
    last: Instant,
    laps: Vec<(Stage, f64)>,
    transfers: Option<Recorder>,
}

impl StageClock {
    /// A clock that records nothing and never synchronises.
    pub fn off() -> Self {
        Self {
            device: None,
            last: Instant::now(),
            laps: Vec::new(),
            transfers: None,
        }
    }

    /// Starts timing (and counting transfers on this thread) now when `enabled`.
    pub fn start(enabled: bool, device: &Device) -> Self {
        if !enabled {
            return Self::off();
        }
        Self {
            device: Some(device.clone()),
            last: Instant::now(),
            laps: Vec::new(),
            transfers: Some(Recorder::start()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.device.is_some()
    }

    /// Ends `stage`: waits for the device, records the time since the previous lap.
    pub fn lap(&mut self, stage: Stage) -> candle_core::Result<()> {
        let Some(device) = &self.device else {
            return Ok(());
        };
        device.synchronize()?;
        let now = Instant::now();
        self.laps.push((stage, (now - self.last).as_secs_f64()));
        self.last = now;
        Ok(())
    }

    /// The stages and transfers recorded; `None` when profiling is off.
    pub fn finish(self) -> Option<StageProfile> {
        self.device.as_ref()?;
        Some(StageProfile {
            laps: self.laps,
            transfers: self.transfers.map(Recorder::finish).unwrap_or_default(),
        })
    }
}

/// What one iteration or image took.
#[derive(Debug, Clone)]
pub struct StageProfile {
    /// Seconds per stage, in order (a stage met twice appears twice).
    pub laps: Vec<(Stage, f64)>,
    /// Host↔device traffic of the iteration.
    pub transfers: TransferRecord,
}

impl fmt::Display for StageProfile {
    /// `data 0.012 s, backbone 0.301 s, ...; transfers 0 (0 B), host reads 12 (1.5 KiB)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages: Vec<String> = self
            .laps
            .iter()
            .map(|(s, t)| format!("{} {t:.3} s", s.name()))
            .collect();
        let t = &self.transfers;
        write!(
            f,
            "{}; transfers {} ({}), host reads {} ({}), uploads {} ({})",
            stages.join(", "),
            t.transfers,
            bytes(t.transfer_bytes),
            t.host_reads,
            bytes(t.host_read_bytes),
            t.uploads,
            bytes(t.upload_bytes)
        )
    }
}

/// `512 B`, `1.5 KiB`, `20.0 MiB`.
fn bytes(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
    }
}

#[cfg(test)]
mod tests;
