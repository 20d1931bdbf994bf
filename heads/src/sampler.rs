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
        let mut positive = Vec::new();
        let mut negative = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            match l.into() {
                l if l >= 1 => positive.push(i as u32),
                0 => negative.push(i as u32),
                _ => {}
            }
        }
        // int() truncation, as torchvision.
        let max_pos = (self.batch_size_per_image as f64 * self.positive_fraction) as usize;
        let num_pos = positive.len().min(max_pos);
        let num_neg = negative.len().min(self.batch_size_per_image - num_pos);
        let mut rng = SplitMix64::for_image(self.seed, self.next_image);
        self.next_image += 1;
        rng.choose(&mut positive, num_pos);
        rng.choose(&mut negative, num_neg);
        SampledIndices { positive, negative }
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

    /// Keeps a uniformly drawn `k`-subset of `items` (partial Fisher-Yates), in drawn order.
    fn choose(&mut self, items: &mut Vec<u32>, k: usize) {
        let n = items.len();
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            items.swap(i, j);
        }
        items.truncate(k);
    }
}

#[cfg(test)]
mod tests;
