//! The loader's settings and its two modes.
/// Loader settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Decoding threads (0 = decode on the consumer's thread when a batch is asked for).
    pub num_workers: usize,
    /// Batches prepared ahead of the consumer, at most.
    pub prefetch: usize,
    /// Seed of the data order and augmentation.
    pub seed: u64,
    /// torchvision's `aspect_ratio_group_factor` (3); `None` batches in shuffled order,
    /// dropping the last partial batch. Training only.
    pub aspect_ratio_group_factor: Option<usize>,
    /// Probability of a horizontal flip per training image (torchvision reference: 0.5).
    pub flip_probability: f64,
    /// Turn image failures into counted warnings instead of errors.
    pub skip_bad_images: bool,
    /// Training only: leave out images without any (non-crowd) box, as torchvision's and
    /// detectron2's training does. Evaluation always keeps every image.
    pub filter_empty: bool,
    /// The part of every batch this loader builds (data-parallel training: one rank's slice).
    pub shard: Shard,
}

/// Rank `index` of `count` builds the contiguous slice `index * B / count ..
/// (index + 1) * B / count` of every batch of `B` images (`B` a multiple of `count`). Each
/// image keeps the augmentation and the padded size it has in the whole batch, so the slices
/// of all ranks together are exactly the whole batch. `Shard::WHOLE` builds whole batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The positions of a batch of `len` images this shard builds.
    pub fn range(self, len: usize) -> std::ops::Range<usize> {
        let count = self.count.max(1);
        len * self.index / count..len * (self.index + 1) / count
    }
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 2,
            num_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 4,
            seed: 0,
            aspect_ratio_group_factor: Some(3),
            flip_probability: 0.5,
            skip_bad_images: false,
            filter_empty: true,
            shard: Shard::WHOLE,
        }
    }
}

/// Training (shuffle, group, flip, random `min_size`, images without boxes left out) or
/// evaluation (every image in file order, no augmentation, last `min_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}
