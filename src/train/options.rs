//! `detect train`'s arguments validated once into [`TrainOptions`]: dataset, backbone, how the
//! weights start, solver, batch, device, sizes, periods and the output folder.
use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use datasets::dataset::DatasetSpec;
use datasets::image::DecodeLimits;
use datasets::transforms::MULTI_SCALE_MIN_SIZES;

use crate::cli::TrainArgs;
use crate::commands::{dataset_spec, decode_limits};
use crate::model::config::SHAPES_BACKBONE;
use crate::model::precision::Precision;
use crate::train::dist::options::DistOptions;
use crate::train::dist::{Backend, WorkerEnv};
use crate::train::solver::{Schedule, SolverConfig};
use crate::weights::registry::{Registry, WeightsRef};

/// How the weights start.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// torchvision's initialisation, seeded (`--backbone-weights none`).
    Random,
    /// The backbone's published ImageNet weights from the registry (`--backbone-weights
    /// imagenet`, the default for COCO and annotation files).
    ImageNet,
    /// ImageNet classification weights for the backbone body (torchvision names), a file or a
    /// registry name.
    BackboneWeights(WeightsRef),
    /// A whole detector, a file or a registry name.
    Detector(WeightsRef),
}

/// Everything `detect train` needs, validated.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub dataset: DatasetSpec,
    /// Backbone name (`resnext101_32x4d`, or the small shapes model).
    pub backbone: String,
    /// Whether `--backbone` was given (else the weights' architecture may decide).
    pub backbone_given: bool,
    pub init: Init,
    /// `--trainable-backbone-layers` (None: 3 from pretrained weights, 5 from random ones).
    pub trainable_backbone_layers: Option<usize>,
    pub solver: SolverConfig,
    pub batch_size: usize,
    pub seed: u64,
    pub device: Device,
    /// Override of the transform's shorter sides (several: multi-scale training, evaluation
    /// at the last) / longest side.
    pub min_size: Option<Vec<usize>>,
    pub max_size: Option<usize>,
    /// Evaluate every N iterations (0: only at the end).
    pub eval_period: u64,
    /// Write a checkpoint every N iterations (and at the end).
    pub checkpoint_period: u64,
    /// Log losses every N iterations (the loss components are read only then).
    pub log_period: u64,
    /// Print each iteration's stage times and transfers (`--profile`).
    pub profile: bool,
    pub output: PathBuf,
    pub resume: bool,
    pub skip_bad_images: bool,
    /// Checked on each image file's header before decoding (`--max-image-pixels`).
    pub decode_limits: DecodeLimits,
    /// The math of CUDA convolutions (`--precision`).
    pub precision: Precision,
    /// Data-parallel training: this process's role, the backend and the timeout.
    pub dist: DistOptions,
}

/// Iterations and batch of the `shapes` quick start (fits 10 minutes on 2 cores).
const SHAPES_ITERS: u64 = 1000;
const SHAPES_BATCH: usize = 4;
const SHAPES_LR: f64 = 0.02;

impl TrainOptions {
    pub fn from_args(args: &TrainArgs) -> anyhow::Result<Self> {
        Self::from_args_in(args, WorkerEnv::from_env()?, Backend::from_env()?)
    }

    /// [`TrainOptions::from_args`] with the worker variables and backend given (tests; the
    /// in-process data-parallel path).
    pub fn from_args_in(
        args: &TrainArgs,
        worker: Option<WorkerEnv>,
        backend: Backend,
    ) -> anyhow::Result<Self> {
        check_ranges(args)?;
        let dist = DistOptions::new(&args.dist, worker, backend)?;
        let dataset = dataset_spec(&args.data)?.context(
            "training needs --dataset NAME, --annotations FILE.json --images DIR, \
                 --annotations VOC_ROOT or --annotations data.yaml",
        )?;
        let shapes = matches!(dataset, DatasetSpec::Shapes(_));
        let backbone = args.backbone.clone().unwrap_or_else(|| {
            if shapes {
                SHAPES_BACKBONE
            } else {
                "resnext101_32x4d"
            }
            .to_string()
        });
        let batch_size = args
            .batch_size
            .unwrap_or(if shapes { SHAPES_BATCH } else { 2 });
        let schedule = args
            .schedule
            .as_deref()
            .map(str::parse::<Schedule>)
            .transpose()?;
        let mut solver = match (schedule, args.iters) {
            (Some(s), _) => SolverConfig::for_schedule(s, batch_size)?,
            (None, Some(iters)) => SolverConfig::with_iters(
                iters as u64,
                args.steps
                    .as_ref()
                    .map(|s| s.iter().map(|&x| x as u64).collect()),
                batch_size,
            )?,
            (None, None) if shapes => SolverConfig::with_iters(SHAPES_ITERS, None, batch_size)?,
            (None, None) => SolverConfig::for_schedule(Schedule::OneX, batch_size)?,
        };
        if shapes {
            // The small synthetic task: the full base LR at batch 4 and a warm-up of a tenth
            // of the run (the COCO recipe's 1,000 iterations would be the whole run).
            solver.base_lr = SHAPES_LR;
            solver.warmup_iters = solver.warmup_iters.min(solver.max_iter / 10);
        }
        if let Some(lr) = args.lr {
            solver.base_lr = lr;
        }
        solver.warmup_iters = solver.warmup_iters.min(solver.max_iter);
        solver.clip_grad_norm = args.clip_grad_norm;
        solver.validate()?;
        let init = match (args.backbone_weights.as_deref(), &args.weights) {
            (Some("none"), _) => Init::Random,
            (Some("imagenet"), _) => Init::ImageNet,
            (Some(value), _) => Init::BackboneWeights(WeightsRef::parse(value)),
            (None, Some(value)) => Init::Detector(WeightsRef::parse(value)),
            // torchvision's references and detectron2 start real datasets from ImageNet.
            (None, None) if shapes => Init::Random,
            (None, None) => Init::ImageNet,
        };
        if init == Init::ImageNet {
            // Fail now, before any data is read, when the backbone has no published weights.
            Registry::load()?
                .imagenet_name(&backbone)
                .with_context(|| {
                    if args.backbone_weights.is_none() {
                        "--backbone-weights imagenet is the default for this dataset"
                    } else {
                        "--backbone-weights imagenet"
                    }
                })?;
        }
        let output = args.output.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from(format!("runs/{}-{backbone}-{secs}", dataset.name()))
        });
        check_world(&dist, batch_size, args.data.skip_bad_images)?;
        let max_iter = solver.max_iter;
        let min_size = match &args.min_size {
            Some(sizes) if sizes.is_empty() || sizes.contains(&0) => {
                anyhow::bail!("--min-size: expected positive pixel counts, got {sizes:?}")
            }
            Some(sizes) => Some(sizes.clone()),
            // detectron2's 3x recipes train multi-scale.
            None if schedule == Some(Schedule::ThreeX) => Some(MULTI_SCALE_MIN_SIZES.to_vec()),
            None => None,
        };
        Ok(Self {
            dataset,
            backbone,
            backbone_given: args.backbone.is_some(),
            init,
            trainable_backbone_layers: args.trainable_backbone_layers.map(usize::from),
            solver,
            batch_size,
            seed: args.seed,
            device: dist.device(args.device.as_deref())?,
            min_size,
            max_size: args.max_size,
            eval_period: args.eval_period.unwrap_or(0) as u64,
            checkpoint_period: match args.checkpoint_period {
                Some(p) => p as u64,
                None => (max_iter / 5).clamp(1, 5000),
            },
            log_period: args.log_period as u64,
            profile: args.profile,
            output,
            resume: args.resume,
            skip_bad_images: args.data.skip_bad_images,
            decode_limits: decode_limits(args.data.max_image_pixels)?,
            precision: args.precision,
            dist,
        })
    }
}

/// The image sides `--min-size` / `--max-size` accept, in pixels: at least one cell of the
/// backbone's coarsest level (stride 32), at most 8192 (10x the COCO recipe's 800 / 1333).
pub const IMAGE_SIDE_RANGE: std::ops::RangeInclusive<usize> = 32..=8192;

/// Data-parallel training splits every batch evenly across the ranks.
fn check_world(dist: &DistOptions, batch_size: usize, skip_bad_images: bool) -> anyhow::Result<()> {
    let world = dist.world_size();
    if !batch_size.is_multiple_of(world) {
        anyhow::bail!(
            "--batch-size {batch_size} does not split evenly over {world} workers: it is the \
             total over all of them\nhint: use a multiple of {world}, e.g. --batch-size {}",
            world * (batch_size / world).max(1)
        );
    }
    if world > 1 && skip_bad_images {
        anyhow::bail!(
            "--skip-bad-images is not supported in data-parallel training yet (a skipped image \
             would leave one worker's share of the batch short)\nhint: remove the unreadable \
             images, or train in one process"
        );
    }
    Ok(())
}

/// Refuses numbers no run can use, naming the option and its valid range.
fn check_ranges(args: &TrainArgs) -> anyhow::Result<()> {
    let sides = args.min_size.iter().flatten().map(|&v| ("--min-size", v));
    for (option, v) in sides.chain(args.max_size.map(|v| ("--max-size", v))) {
        if !IMAGE_SIDE_RANGE.contains(&v) {
            anyhow::bail!(
                "{option} must be in {}..={} pixels, got {v}",
                IMAGE_SIDE_RANGE.start(),
                IMAGE_SIDE_RANGE.end()
            );
        }
    }
    let largest_min = args.min_size.iter().flatten().copied().max();
    if let (Some(min), Some(max)) = (largest_min, args.max_size) {
        anyhow::ensure!(
            max >= min,
            "--max-size {max} is below --min-size {min}: the longest side cannot be shorter \
             than the shorter one (--max-size must be at least {min})"
        );
    }
    for (option, value) in [
        ("--batch-size", args.batch_size),
        ("--checkpoint-period", args.checkpoint_period),
        ("--log-period", Some(args.log_period)),
    ] {
        anyhow::ensure!(value != Some(0), "{option} must be at least 1, got 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
