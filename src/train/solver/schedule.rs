//! Solver hyper-parameters and the learning-rate schedule.
//!
//! The recipe is detectron2's / torchvision's for Faster R-CNN: base LR 0.02 for 16 images per
//! iteration, scaled linearly with the batch size (Goyal et al., "Accurate, Large Minibatch SGD");
//! linear warm-up from `warmup_factor`·LR over `warmup_iters`; ×`gamma` at each of `steps`.
//! The `1x` schedule is 90k iterations at 16 images (steps 60k, 80k), `3x` is 270k (210k, 250k);
//! at another batch size the iteration counts scale by 16/batch so the number of images seen is
//! the same (detectron2's `auto_scale_workers` rounding). Warm-up stays 1,000 iterations as the
//! issue specifies (detectron2's `auto_scale_workers` would scale it too).
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Images per iteration of the reference schedules.
pub const REFERENCE_BATCH: usize = 16;

/// Errors in solver settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SolverError {
    #[error("unknown schedule `{0}` (expected `1x` or `3x`)")]
    UnknownSchedule(String),
    #[error("batch size must be at least 1, got {0}")]
    ZeroBatch(usize),
    #[error("the number of iterations must be at least 1, got {0}")]
    ZeroIters(u64),
    #[error("LR steps must increase strictly and lie in 1..{max_iter}, got {steps:?}")]
    BadSteps { steps: Vec<u64>, max_iter: u64 },
    #[error("{name} must be finite and {constraint}, got {value}")]
    BadValue {
        name: &'static str,
        constraint: &'static str,
        value: f64,
    },
}

/// A preset schedule, named as detectron2's model zoo names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// 90k iterations at 16 images, LR ×0.1 at 60k and 80k (~12 COCO epochs).
    #[serde(rename = "1x")]
    OneX,
    /// 270k iterations at 16 images, LR ×0.1 at 210k and 250k (~37 COCO epochs).
    #[serde(rename = "3x")]
    ThreeX,
}

impl FromStr for Schedule {
    type Err = SolverError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1x" => Ok(Self::OneX),
            "3x" => Ok(Self::ThreeX),
            _ => Err(SolverError::UnknownSchedule(s.to_string())),
        }
    }
}

impl Schedule {
    /// (iterations, steps) at 16 images per iteration.
    fn reference(self) -> (u64, [u64; 2]) {
        match self {
            Self::OneX => (90_000, [60_000, 80_000]),
            Self::ThreeX => (270_000, [210_000, 250_000]),
        }
    }
}

/// The solver's settings; `Default` is the `1x` schedule at 16 images per iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverConfig {
    /// LR after warm-up, before any step (detectron2 `SOLVER.BASE_LR`).
    pub base_lr: f64,
    /// SGD momentum (`SOLVER.MOMENTUM`, torch `momentum`).
    pub momentum: f64,
    /// L2 weight decay added to every trained parameter's gradient (`SOLVER.WEIGHT_DECAY`).
    pub weight_decay: f64,
    /// Number of iterations (`SOLVER.MAX_ITER`).
    pub max_iter: u64,
    /// Iterations at which the LR is multiplied by `gamma` (`SOLVER.STEPS`).
    pub steps: Vec<u64>,
    /// LR decay factor at each step (`SOLVER.GAMMA`).
    pub gamma: f64,
    /// Length of the linear warm-up, in iterations (`SOLVER.WARMUP_ITERS`).
    pub warmup_iters: u64,
    /// LR multiplier at iteration 0 of the warm-up (`SOLVER.WARMUP_FACTOR`).
    pub warmup_factor: f64,
    /// Clip the global L2 norm of the gradients to this value (`None`: no clipping).
    pub clip_grad_norm: Option<f64>,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self::for_schedule(Schedule::OneX, REFERENCE_BATCH).expect("16 is a valid batch size")
    }
}

fn scale_iters(iters: u64, batch_size: usize) -> u64 {
    (iters as f64 * REFERENCE_BATCH as f64 / batch_size as f64).round() as u64
}

impl SolverConfig {
    /// A preset schedule at `batch_size` images per iteration: LR 0.02·batch/16, iterations and
    /// steps ×16/batch.
    pub fn for_schedule(schedule: Schedule, batch_size: usize) -> Result<Self, SolverError> {
        let (iters, steps) = schedule.reference();
        Self::with_iters(
            scale_iters(iters, batch_size).max(1),
            Some(steps.iter().map(|&s| scale_iters(s, batch_size)).collect()),
            batch_size,
        )
    }

    /// An explicit number of iterations. Without `steps`, the LR drops at the same fractions of
    /// the run as in `1x` (2/3 and 8/9).
    pub fn with_iters(
        max_iter: u64,
        steps: Option<Vec<u64>>,
        batch_size: usize,
    ) -> Result<Self, SolverError> {
        if batch_size == 0 {
            return Err(SolverError::ZeroBatch(batch_size));
        }
        let steps = steps.unwrap_or_else(|| {
            let mut steps = vec![max_iter * 2 / 3, max_iter * 8 / 9];
            steps.retain(|&s| s >= 1);
            steps.dedup();
            steps
        });
        let config = Self {
            base_lr: 0.02 * batch_size as f64 / REFERENCE_BATCH as f64,
            momentum: 0.9,
            weight_decay: 1e-4,
            max_iter,
            steps,
            gamma: 0.1,
            warmup_iters: 1000,
            warmup_factor: 1.0 / 1000.0,
            clip_grad_norm: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings (called by the constructors; call again after editing fields).
    pub fn validate(&self) -> Result<(), SolverError> {
        if self.max_iter == 0 {
            return Err(SolverError::ZeroIters(self.max_iter));
        }
        let increasing = self.steps.windows(2).all(|w| w[0] < w[1]);
        let in_range = self.steps.iter().all(|&s| s >= 1 && s < self.max_iter);
        if !increasing || !in_range {
            return Err(SolverError::BadSteps {
                steps: self.steps.clone(),
                max_iter: self.max_iter,
            });
        }
        let checks: [(&'static str, &'static str, f64, bool); 6] = [
            ("base_lr", "> 0", self.base_lr, self.base_lr > 0.0),
            (
                "momentum",
                "in [0, 1)",
                self.momentum,
                (0.0..1.0).contains(&self.momentum),
            ),
            (
                "weight_decay",
                ">= 0",
                self.weight_decay,
                self.weight_decay >= 0.0,
            ),
            ("gamma", "> 0", self.gamma, self.gamma > 0.0),
            (
                "warmup_factor",
                "in (0, 1]",
                self.warmup_factor,
                self.warmup_factor > 0.0 && self.warmup_factor <= 1.0,
            ),
            (
                "clip_grad_norm",
                "> 0",
                self.clip_grad_norm.unwrap_or(1.0),
                self.clip_grad_norm.unwrap_or(1.0) > 0.0,
            ),
        ];
        for (name, constraint, value, ok) in checks {
            if !ok || !value.is_finite() {
                return Err(SolverError::BadValue {
                    name,
                    constraint,
                    value,
                });
            }
        }
        Ok(())
    }

    /// The learning rate of iteration `iteration` (0-based; the LR used by the update that
    /// iteration makes).
    ///
    /// factor = warm-up · gamma^(number of steps ≤ iteration), with the linear warm-up
    /// `warmup_factor·(1 − α) + α`, α = iteration / warmup_iters, while iteration < warmup_iters
    /// (detectron2's `WarmupMultiStepLR` with `warmup_method="linear"`). Example with the
    /// defaults: iteration 0 → 0.02·0.001, 500 → 0.02·0.5005, 60000 → 0.002.
    pub fn lr_at(&self, iteration: u64) -> f64 {
        let warmup = if iteration < self.warmup_iters {
            let alpha = iteration as f64 / self.warmup_iters as f64;
            self.warmup_factor * (1.0 - alpha) + alpha
        } else {
            1.0
        };
        let decays = self.steps.iter().filter(|&&s| s <= iteration).count();
        self.base_lr * (warmup * self.gamma.powf(decays as f64))
    }
}
