//! The data loader: worker threads decode and transform whole batches ahead of the model,
//! and the batches come out in a fixed order for a given seed and epoch.
//!
//! Flow per epoch: [`sampler`](crate::sampler) fixes the batches (shuffled and aspect-ratio
//! grouped for training; in file order, all images, for evaluation) → `num_workers` threads take
//! batch jobs in order, at most `prefetch` batches ahead of the consumer → each job
//! (`build`) decodes its images, draws its flips and `min_size` from a generator keyed
//! by `(seed, epoch, batch, slot)` (so the result does not depend on which thread ran it), and
//! transforms them straight into the zero-padded `[B, 3, H, W]` buffer → [`EpochBatches`]
//! hands batches out in job order.
//!
//! Data-parallel training gives each rank a [`Shard`]: the batches are planned whole (the same
//! on every rank), and a rank builds only its slice of each, every image keeping the draw and
//! the padded size it has in the whole batch.
//!
//! Bad images (missing, corrupt, truncated, wrong size) end the epoch with an error naming the
//! file and the image record, unless `skip_bad_images` is set: then the image is left out of
//! its batch and counted, with its message kept for the final report.
mod batch;
mod build;
mod config;
mod epoch;
mod job;

use std::sync::Arc;

pub use batch::{Batch, Targets};
pub use config::{LoaderConfig, Mode, Shard};
pub use epoch::EpochBatches;
pub use job::LoaderError;
use job::{Item, Shared};

use crate::coco::{CategoryMap, ImageId, TargetOptions};
use crate::dataset::Dataset;
use crate::sampler::{aspect_ratio_groups, epoch_order, grouped_batches, plain_batches};
use crate::transforms::TransformConfig;

/// Counts of what the targets left out (from the COCO rules) and of skipped images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetStats {
    pub crowd_excluded: usize,
    pub small_dropped: usize,
    pub unmapped_dropped: usize,
    pub empty_images_filtered: usize,
}

/// A dataset with its transform, ready to produce epochs of batches.
pub struct DataLoader {
    shared: Arc<Shared>,
    mode: Mode,
    groups: Vec<usize>,
    stats: TargetStats,
}

impl DataLoader {
    /// A loader over `dataset` with labels from `map`. Training leaves out crowd regions and
    /// (with `filter_empty`) images without boxes; evaluation keeps every image (targets still
    /// exclude crowds).
    pub fn new(
        dataset: Arc<Dataset>,
        map: &CategoryMap,
        transform: TransformConfig,
        config: LoaderConfig,
        mode: Mode,
    ) -> Self {
        let options = TargetOptions {
            filter_empty: mode == Mode::Train && config.filter_empty,
        };
        let targets = dataset.coco.training_targets(map, options);
        let stats = TargetStats {
            crowd_excluded: targets.crowd_excluded,
            small_dropped: targets.small_dropped,
            unmapped_dropped: targets.unmapped_dropped,
            empty_images_filtered: targets.empty_images_filtered,
        };
        let items: Vec<Item> = targets
            .images
            .into_iter()
            .map(|t| Item {
                record: t.image_index,
                image_id: t.image_id,
                boxes: t.boxes_xyxy,
                labels: t.labels,
            })
            .collect();
        let sizes: Vec<(u32, u32)> = items
            .iter()
            .map(|it| {
                let info = &dataset.coco.images[it.record];
                (info.width, info.height)
            })
            .collect();
        let groups = aspect_ratio_groups(&sizes, config.aspect_ratio_group_factor.unwrap_or(0));
        DataLoader {
            shared: Arc::new(Shared {
                dataset,
                items,
                transform,
                config,
                mode,
            }),
            mode,
            groups,
            stats,
        }
    }

    /// Images this loader iterates over (after training's filtering).
    pub fn num_images(&self) -> usize {
        self.shared.items.len()
    }

    /// What the COCO target rules left out.
    pub fn target_stats(&self) -> TargetStats {
        self.stats
    }

    /// The batches of an epoch, as lists of item positions (see [`crate::sampler`]).
    pub fn epoch_plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let n = self.shared.items.len();
        let c = &self.shared.config;
        match self.mode {
            Mode::Eval => plain_batches(&epoch_order(n, c.seed, epoch, false), c.batch_size, false),
            Mode::Train => {
                let order = epoch_order(n, c.seed, epoch, true);
                match c.aspect_ratio_group_factor {
                    Some(_) => grouped_batches(&order, &self.groups, c.batch_size),
                    None => plain_batches(&order, c.batch_size, true),
                }
            }
        }
    }

    /// Image ids of each batch of an epoch, in order (what [`DataLoader::epoch`] will yield).
    pub fn epoch_image_ids(&self, epoch: u64) -> Vec<Vec<ImageId>> {
        let items = &self.shared.items;
        self.epoch_plan(epoch)
            .iter()
            .map(|b| b.iter().map(|&i| items[i].image_id).collect())
            .collect()
    }

    /// Starts the workers for one epoch; the iterator yields its batches in order.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        self.epoch_from(epoch, 0)
    }

    /// The batches of an epoch from batch `first` on, as [`DataLoader::epoch`] would yield them
    /// after `first` batches; the earlier batches are not decoded (resuming mid-epoch).
    pub fn epoch_from(&self, epoch: u64, first: usize) -> EpochBatches {
        EpochBatches::start(self.shared.clone(), self.epoch_plan(epoch), epoch, first)
    }
}
