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
