//! Picks a fixed-size, class-balanced subset of matched predictions for the losses
//! (torchvision's `BalancedPositiveNegativeSampler`).
//!
//! Labels follow the matcher's convention: `>= 1` positive, `0` background, negative values
//! ignored. Up to `batch_size_per_image * positive_fraction` positives are drawn uniformly
//! without replacement; negatives fill the rest of the batch as far as there are any.
//!
//! The random draw is seeded and reproducible, but it is not torch's generator: parity tests
//! take torchvision's choices from a fixture and pass them as [`SampledIndices`] instead.
//!
//! Each image draws from its own stream, keyed by `(seed, image index)`: the `k`-th call to
//! [`BalancedPositiveNegativeSampler::sample`] is image `first_image + k`. So a batch split
//! across data-parallel ranks (rank `r` starting at its slice's first image) samples exactly
//! what one process with the whole batch samples.
//!
//! [`BalancedPositiveNegativeSampler::sample_tensor`] draws on device labels: the positive and
//! negative indices come from [`nonzero`](crate::ops::nonzero) (two counts reach the host), the
//! host draws *ranks* among them, and the chosen indices are picked on the device. It consumes
//! the generator exactly as [`BalancedPositiveNegativeSampler::sample`] does and chooses the
//! same predictions.

use crate::ops::{self, transfer};
use candle_core::op::CmpOp;
use candle_core::{Result, Tensor};
use std::collections::HashMap;

/// Training label of a prediction matched to a ground truth (the RPN's "object"; the box head
/// uses the ground truth's class, `>= 1`).
pub const FOREGROUND: i64 = 1;
/// Training label of a prediction matched to nothing (class 0).
pub const BACKGROUND: i64 = 0;
/// Training label of a prediction left out of the losses (IoU between the thresholds).
pub const IGNORE: i64 = -1;

/// The predictions chosen for one image's loss, as indices into that image's predictions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampledIndices {
    /// Chosen positives (label >= 1).
    pub positive: Vec<u32>,
    /// Chosen negatives (label == 0).
    pub negative: Vec<u32>,
}

impl SampledIndices {
    /// Positives then negatives.
    pub fn all(&self) -> Vec<u32> {
        self.positive
            .iter()
            .chain(&self.negative)
            .copied()
            .collect()
    }

    /// Total number of chosen predictions.
    pub fn len(&self) -> usize {
        self.positive.len() + self.negative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The predictions chosen for one image's loss, as device indices into its predictions.
#[derive(Debug, Clone)]
pub struct SampledTensors {
    /// U32 `[P]`: chosen positives, in drawn order.
    pub positive: Tensor,
    /// U32 `[Q]`: chosen negatives, in drawn order.
    pub negative: Tensor,
}

impl SampledTensors {
    /// Host indices on `device` (e.g. a fixture's choices).
    pub fn upload(s: &SampledIndices, device: &candle_core::Device) -> Result<Self> {
        Ok(Self {
            positive: transfer::upload(s.positive.clone(), s.positive.len(), device)?,
            negative: transfer::upload(s.negative.clone(), s.negative.len(), device)?,
        })
    }

    /// Positives then negatives, U32 `[P + Q]`.
    pub fn all(&self) -> Result<Tensor> {
        Tensor::cat(&[&self.positive, &self.negative], 0)
    }
}

/// Seeded sampler of positives and negatives.
#[derive(Debug, Clone)]
pub struct BalancedPositiveNegativeSampler {
    /// Predictions sampled per image (`batch_size_per_image`).
    pub batch_size_per_image: usize,
    /// Largest fraction of the batch that is positive (`positive_fraction`).
    pub positive_fraction: f64,
    seed: u64,
    /// The image index of the next [`BalancedPositiveNegativeSampler::sample`] call.
    next_image: u64,
}

impl BalancedPositiveNegativeSampler {
    pub fn new(batch_size_per_image: usize, positive_fraction: f64, seed: u64) -> Self {
        Self {
            batch_size_per_image,
            positive_fraction,
            seed,
            next_image: 0,
        }
    }

    /// The same sampler with its first image at index `first` of the batch (a data-parallel
    /// rank's slice starts there).
    pub fn starting_at_image(mut self, first: u64) -> Self {
        self.next_image = first;
        self
    }

    /// Samples one image from its labels (`>= 1` positive, `0` negative, `< 0` ignored).
    pub fn sample<L: Copy + Into<i64>>(&mut self, labels: &[L]) -> SampledIndices {
        let mut positive_all = Vec::new();
        let mut negative = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            match l.into() {
                l if l >= 1 => positive_all.push(i as u32),
                0 => negative.push(i as u32),
                _ => {}
            }
        }
        let (num_pos, num_neg) = self.quotas(positive_all.len(), negative.len());
        let mut rng = self.next_stream();
        let positive = rng.choose_ranks(positive_all.len(), num_pos);
        let negative_ranks = rng.choose_ranks(negative.len(), num_neg);
        SampledIndices {
            positive: positive.iter().map(|&r| positive_all[r as usize]).collect(),
            negative: negative_ranks
                .iter()
                .map(|&r| negative[r as usize])
                .collect(),
        }
    }

    /// [`BalancedPositiveNegativeSampler::sample`] on device labels: the same choice, as
    /// device indices. Two counts (the positives', the negatives') are read to the host.
    ///
    /// # Shapes
    /// `labels [N]` integer (`>= 1` positive, `0` negative, `< 0` ignored)
    pub fn sample_tensor(&mut self, labels: &Tensor) -> Result<SampledTensors> {
        let device = labels.device();
        let positive = ops::nonzero(&ops::compare_scalar(labels, CmpOp::Ge, 1.0)?)?; // [n_pos]
        let negative = ops::nonzero(&ops::compare_scalar(labels, CmpOp::Eq, 0.0)?)?; // [n_neg]
        let (num_pos, num_neg) = self.quotas(positive.dim(0)?, negative.dim(0)?);
        let mut rng = self.next_stream();
        let pos_ranks = rng.choose_ranks(positive.dim(0)?, num_pos);
        let neg_ranks = rng.choose_ranks(negative.dim(0)?, num_neg);
        let pick = |all: &Tensor, ranks: Vec<u32>| -> Result<Tensor> {
            let k = ranks.len();
            all.index_select(&transfer::upload(ranks, k, device)?, 0)
        };
        Ok(SampledTensors {
            positive: pick(&positive, pos_ranks)?,
            negative: pick(&negative, neg_ranks)?,
        })
    }

    /// The generator of the next image, which then becomes the one after it.
    fn next_stream(&mut self) -> SplitMix64 {
        let rng = SplitMix64::for_image(self.seed, self.next_image);
        self.next_image += 1;
        rng
    }

    /// How many positives and negatives to draw from `available_pos` and `available_neg`.
    fn quotas(&self, available_pos: usize, available_neg: usize) -> (usize, usize) {
        // int() truncation, as torchvision.
        let max_pos = (self.batch_size_per_image as f64 * self.positive_fraction) as usize;
        let num_pos = available_pos.min(max_pos);
        let num_neg = available_neg.min(self.batch_size_per_image - num_pos);
        (num_pos, num_neg)
    }
}

/// A tiny, well-mixed 64-bit generator (Steele et al., "Fast splittable pseudorandom number
/// generators", 2014); enough for sampling and keeps the crate free of a `rand` dependency.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    /// The stream of image `index` under `seed`: the pair is mixed so that neighbouring
    /// indices give unrelated streams.
    fn for_image(seed: u64, index: u64) -> Self {
        let mut keyed = SplitMix64(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        SplitMix64(keyed.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by rejection so that no value is favoured.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A uniformly drawn `k`-subset (`k <= n`) of the positions `0..n`, in drawn order: a
    /// partial Fisher-Yates shuffle of `0..n` that stores only the swapped positions, so it
    /// costs `O(k)` whatever `n`.
    fn choose_ranks(&mut self, n: usize, k: usize) -> Vec<u32> {
        let mut moved: HashMap<usize, usize> = HashMap::new(); // position -> value held
        let mut out = Vec::with_capacity(k.min(n));
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            let at_i = moved.get(&i).copied().unwrap_or(i);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            // swap(i, j): position i is final (later steps only touch positions > i).
            moved.insert(j, at_i);
            out.push(at_j as u32);
        }
        out
    }
}

#[cfg(test)]
mod tests;
