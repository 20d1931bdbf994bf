//! Assigns each prediction (anchor or proposal) at most one ground-truth box (torchvision's
//! `Matcher`).
//!
//! Given the `[G, N]` quality matrix (IoU of ground truth `g` with prediction `n`), prediction
//! `n` is matched to its best ground truth when that IoU is `>= high`; it is
//! [`BELOW_LOW_THRESHOLD`] when the IoU is `< low` and [`BETWEEN_THRESHOLDS`] in `[low, high)`.
//!
//! Example with high = 0.7, low = 0.3 and one ground truth: IoUs `[0.8, 0.5, 0.1]` give
//! `[0, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD]`.
//!
//! With `allow_low_quality_matches` (the RPN), every ground truth also keeps the predictions
//! that overlap it best — all of them on ties — even when that IoU is below `high`: IoUs
//! `[0.4, 0.2]` give `[0, BELOW_LOW_THRESHOLD]`. Such a prediction is matched to its own best
//! ground truth, which need not be the ground truth that promoted it.
//!
//! [`Matcher::call`] works on the device with tensor ops (nothing is read to the host);
//! [`Matcher::match_host`] is the same rule on host slices, the reference it is tested against.

use crate::ops::compare_scalar;
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor};

/// Match value: the best IoU is below the low threshold (background).
pub const BELOW_LOW_THRESHOLD: i64 = -1;
/// Match value: the best IoU lies in `[low, high)` (ignored in training).
pub const BETWEEN_THRESHOLDS: i64 = -2;

/// IoU thresholds of a matcher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matcher {
    /// IoU at or above which a prediction is matched.
    pub high_threshold: f32,
    /// IoU below which a prediction is background.
    pub low_threshold: f32,
    /// Keep each ground truth's best predictions even below `high_threshold`.
    pub allow_low_quality_matches: bool,
}

impl Matcher {
    /// Errors when `low_threshold > high_threshold`.
    pub fn new(high: f32, low: f32, allow_low_quality_matches: bool) -> Result<Self> {
        if low > high {
            candle_core::bail!("Matcher: low threshold {low} above high threshold {high}");
        }
        Ok(Self {
            high_threshold: high,
            low_threshold: low,
            allow_low_quality_matches,
        })
    }

    /// Matches from a `[G, N]` IoU tensor, on its device: the same values as
    /// [`Matcher::match_host`] (ties go to the first ground truth, as torch's `max(dim=0)`
    /// on the CPU). Errors when there is no ground truth or no prediction.
    ///
    /// # Shapes
    /// `quality [G, N]` → I64 `[N]`: a ground-truth index, [`BELOW_LOW_THRESHOLD`] or
    /// [`BETWEEN_THRESHOLDS`]
    pub fn call(&self, quality: &Tensor) -> Result<Tensor> {
        let (g, n) = quality.dims2()?;
        if g == 0 || n == 0 {
            candle_core::bail!(
                "Matcher: empty quality matrix ({g} ground truths, {n} predictions)"
            );
        }
        let device = quality.device();
        let q = quality.to_dtype(DType::F32)?; // [G, N]
        let best_val = q.max(0)?; // [N]
        let best = q.argmax(0)?.to_dtype(DType::I64)?; // [N]
        let between = Tensor::full(BETWEEN_THRESHOLDS, n, device)?;
        let below = Tensor::full(BELOW_LOW_THRESHOLD, n, device)?;
        let matches = compare_scalar(&best_val, CmpOp::Lt, self.high_threshold as f64)?
            .where_cond(&between, &best)?;
        let mut matches = compare_scalar(&best_val, CmpOp::Lt, self.low_threshold as f64)?
            .where_cond(&below, &matches)?; // [N]
        if self.allow_low_quality_matches {
            // Predictions that reach some ground truth's highest IoU (all of them on ties).
            let highest = q.max_keepdim(1)?; // [G, 1]
            let is_best = q.broadcast_eq(&highest)?.max(0)?; // [N] u8
            matches = is_best.where_cond(&best, &matches)?;
        }
        Ok(matches)
    }

    /// For each of the `n` predictions: the index of its ground truth, or
    /// [`BELOW_LOW_THRESHOLD`] / [`BETWEEN_THRESHOLDS`]. `quality` is row-major `[g, n]`.
    /// Errors when there is no ground truth or no prediction (the caller handles images
    /// without ground truth separately: everything is background there).
    pub fn match_host(&self, quality: &[f32], g: usize, n: usize) -> Result<Vec<i64>> {
        if g == 0 || n == 0 {
            candle_core::bail!(
                "Matcher: empty quality matrix ({g} ground truths, {n} predictions)"
            );
        }
        if quality.len() != g * n {
            candle_core::bail!("Matcher: {} values for a {g}x{n} matrix", quality.len());
        }
        // Best ground truth per prediction; the first one on ties, like torch's max(dim=0).
        let mut best = vec![0i64; n];
        let mut best_val = quality[..n].to_vec();
        for gi in 1..g {
            let row = &quality[gi * n..(gi + 1) * n];
            for (j, &v) in row.iter().enumerate() {
                if v > best_val[j] {
                    best_val[j] = v;
                    best[j] = gi as i64;
                }
            }
        }
        let mut matches: Vec<i64> = best
            .iter()
            .zip(&best_val)
            .map(|(&m, &v)| {
                if v < self.low_threshold {
                    BELOW_LOW_THRESHOLD
                } else if v < self.high_threshold {
                    BETWEEN_THRESHOLDS
                } else {
                    m
                }
            })
            .collect();
        if self.allow_low_quality_matches {
            for gi in 0..g {
                let row = &quality[gi * n..(gi + 1) * n];
                let highest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for (j, &v) in row.iter().enumerate() {
                    if v == highest {
                        matches[j] = best[j];
                    }
                }
            }
        }
        Ok(matches)
    }
}

#[cfg(test)]
mod tests;
