//! A small seeded random number generator (SplitMix64) for data order, augmentation and the
//! synthetic dataset.
//!
//! Ours rather than `rand`: the streams must stay identical across dependency upgrades (a seed
//! names a dataset and a data order forever), and the generator must be cheap to derive per
//! image from `(seed, epoch, index)` so any worker thread reproduces the same draw.

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a constant, then mixed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator for one item of a stream, e.g. `(seed, [epoch, image_index])`: the words
    /// are mixed one by one so nearby keys give unrelated streams.
    pub fn derive(seed: u64, keys: &[u64]) -> Self {
        let mut state = mix(seed ^ 0x5851_F42D_4C95_7F2D);
        for &k in keys {
            state = mix(state ^ mix(k.wrapping_add(0x9E37_79B9_7F4A_7C15)));
        }
        SplitMix64 { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[0, n)` (`n > 0`); the modulo bias is below 2^-40 for n < 2^24.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 1) % n.max(1) as u64) as usize
    }

    /// Uniform in `[lo, hi)`.
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
