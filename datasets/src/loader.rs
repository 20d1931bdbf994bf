//! The data loader: worker threads decode and transform whole batches ahead of the model,
//! and the batches come out in a fixed order for a given seed and epoch.
//!
//! Flow per epoch: [`sampler`](crate::sampler) fixes the batches (shuffled and aspect-ratio
//! grouped for training; in file order, all images, for evaluation) → `num_workers` threads take
//! batch jobs in order, at most `prefetch` batches ahead of the consumer → each job
//! ([`crate::batch`]) decodes its images, draws its flips and `min_size` from a generator keyed
//! by `(seed, epoch, batch, slot)` (so the result does not depend on which thread ran it), and
//! transforms them straight into the zero-padded `[B, 3, H, W]` buffer → [`EpochBatches`]
//! hands batches out in job order.
//!
//! Bad images (missing, corrupt, truncated, wrong size) end the epoch with an error naming the
//! file and the image record, unless `skip_bad_images` is set: then the image is left out of
//! its batch and counted, with its message kept for the final report.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use thiserror::Error;

use crate::batch::{build_batch, Item};
pub use crate::batch::{Batch, Targets};
use crate::coco::{CategoryMap, ImageId, TargetOptions};
use crate::dataset::Dataset;
use crate::image::ImageError;
use crate::sampler::{aspect_ratio_groups, epoch_order, grouped_batches, plain_batches};
use crate::transforms::TransformConfig;

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

/// Why a batch could not be produced.
#[derive(Debug, Error)]
pub enum LoaderError {
    #[error("image id {image_id} (record {record} of the annotations): {source}")]
    Image {
        image_id: ImageId,
        record: usize,
        #[source]
        source: ImageError,
    },
    #[error("cannot build the batch tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("a loader worker thread stopped unexpectedly")]
    WorkerStopped,
}

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

pub(crate) struct Shared {
    pub(crate) dataset: Arc<Dataset>,
    pub(crate) items: Vec<Item>,
    pub(crate) transform: TransformConfig,
    pub(crate) config: LoaderConfig,
    pub(crate) mode: Mode,
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
        EpochBatches::start(self.shared.clone(), self.epoch_plan(epoch), epoch)
    }
}

/// What a job produced: a batch (None when every image was skipped) and skipped messages.
pub(crate) type JobOutput = (Result<Option<Batch>, LoaderError>, Vec<String>);
/// A job's output tagged with its position in the epoch.
type JobResult = (usize, Result<Option<Batch>, LoaderError>, Vec<String>);

struct Gate {
    /// Next job to hand to a worker.
    next_job: usize,
    /// Jobs the consumer has taken so far.
    consumed: usize,
}

/// The batches of one epoch, produced by worker threads and yielded in order.
pub struct EpochBatches {
    shared: Arc<Shared>,
    plan: Arc<Vec<Vec<usize>>>,
    epoch: u64,
    gate: Arc<(Mutex<Gate>, Condvar)>,
    stop: Arc<AtomicBool>,
    receiver: Option<Receiver<JobResult>>,
    workers: Vec<JoinHandle<()>>,
    pending: BTreeMap<usize, JobOutput>,
    next: usize,
    skipped: Vec<String>,
    failed: bool,
}

impl EpochBatches {
    fn start(shared: Arc<Shared>, plan: Vec<Vec<usize>>, epoch: u64) -> Self {
        let plan = Arc::new(plan);
        let gate = Arc::new((
            Mutex::new(Gate {
                next_job: 0,
                consumed: 0,
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let workers_n = shared.config.num_workers;
        let window = shared.config.prefetch.max(1);
        let mut workers = Vec::new();
        let mut receiver = None;
        if workers_n > 0 {
            let (tx, rx) = sync_channel::<JobResult>(window);
            receiver = Some(rx);
            for _ in 0..workers_n {
                let (tx, shared, plan, gate, stop) = (
                    tx.clone(),
                    shared.clone(),
                    plan.clone(),
                    gate.clone(),
                    stop.clone(),
                );
                workers.push(std::thread::spawn(move || loop {
                    let job = {
                        let (lock, cvar) = &*gate;
                        let Ok(mut g) = lock.lock() else { return };
                        while !stop.load(Ordering::Relaxed)
                            && g.next_job < plan.len()
                            && g.next_job >= g.consumed + window
                        {
                            g = match cvar.wait(g) {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                        }
                        if stop.load(Ordering::Relaxed) || g.next_job >= plan.len() {
                            return;
                        }
                        g.next_job += 1;
                        g.next_job - 1
                    };
                    let (result, skipped) = build_batch(&shared, &plan[job], epoch, job);
                    if tx.send((job, result, skipped)).is_err() {
                        return;
                    }
                }));
            }
        }
        EpochBatches {
            shared,
            plan,
            epoch,
            gate,
            stop,
            receiver,
            workers,
            pending: BTreeMap::new(),
            next: 0,
            skipped: Vec::new(),
            failed: false,
        }
    }

    /// Images skipped so far (with `skip_bad_images`).
    pub fn skipped(&self) -> usize {
        self.skipped.len()
    }

    /// The messages of the skipped images, in batch order.
    pub fn skipped_messages(&self) -> &[String] {
        &self.skipped
    }

    /// Number of batches in this epoch (some may be left out when all their images fail).
    pub fn len(&self) -> usize {
        self.plan.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    fn take_job(&mut self, job: usize) -> JobOutput {
        let Some(rx) = &self.receiver else {
            return build_batch(&self.shared, &self.plan[job], self.epoch, job);
        };
        loop {
            if let Some(r) = self.pending.remove(&job) {
                return r;
            }
            match rx.recv() {
                Ok((j, result, skipped)) => {
                    self.pending.insert(j, (result, skipped));
                }
                Err(_) => return (Err(LoaderError::WorkerStopped), Vec::new()),
            }
        }
    }
}

impl Iterator for EpochBatches {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.next < self.plan.len() {
            let job = self.next;
            let (result, skipped) = self.take_job(job);
            self.next += 1;
            {
                let (lock, cvar) = &*self.gate;
                if let Ok(mut g) = lock.lock() {
                    g.consumed = self.next;
                }
                cvar.notify_all();
            }
            self.skipped.extend(skipped);
            match result {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.gate.1.notify_all();
        // Unblock workers waiting to send, then wait for them.
        self.receiver.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
