//! `detect train`: arguments validated into [`TrainOptions`], then [`train`] runs the loop
//! (loader → losses → backward → SGD), logging to `metrics.jsonl`, checkpointing atomically,
//! evaluating periodically, and writing `model_final.safetensors`.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use datasets::coco::CategoryMap;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::rng::SplitMix64;
use datasets::shapes::Split;
use heads::roi_heads::Target;

use crate::cli::{DatasetArgs, TrainArgs};
use crate::config::{DetectorConfig, SHAPES_BACKBONE};
use crate::model::{FasterRcnn, Losses};
use crate::params::Params;
use crate::solver::{check_finite_losses, clip_grad_norm, Schedule, Sgd, SolverConfig};

/// How the weights start.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// torchvision's initialisation, seeded.
    Random,
    /// ImageNet classification weights for the backbone body (torchvision names).
    BackboneWeights(PathBuf),
    /// A whole detector.
    Detector(PathBuf),
}

/// Everything `detect train` needs, validated.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub dataset: DatasetSpec,
    /// Backbone name (`resnext101_32x4d`, or the small shapes model).
    pub backbone: String,
    pub init: Init,
    pub solver: SolverConfig,
    pub batch_size: usize,
    pub seed: u64,
    pub device: Device,
    /// Override of the transform's shorter side / longest side.
    pub min_size: Option<usize>,
    pub max_size: Option<usize>,
    /// Evaluate every N iterations (0: only at the end).
    pub eval_period: u64,
    /// Write a checkpoint every N iterations (and at the end).
    pub checkpoint_period: u64,
    /// Log losses every N iterations.
    pub log_period: u64,
    pub output: PathBuf,
    pub resume: bool,
    pub skip_bad_images: bool,
}

/// Iterations and batch of the `shapes` quick start (fits 10 minutes on 2 cores).
const SHAPES_ITERS: u64 = 1000;
const SHAPES_BATCH: usize = 4;
const SHAPES_LR: f64 = 0.02;

impl TrainOptions {
    pub fn from_args(args: &TrainArgs) -> anyhow::Result<Self> {
        let dataset = dataset_spec(&args.data)?
            .context("training needs --dataset NAME or --annotations FILE --images DIR")?;
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
        let mut solver = match (&args.schedule, args.iters) {
            (Some(s), _) => SolverConfig::for_schedule(s.parse::<Schedule>()?, batch_size)?,
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
        let init = match (&args.backbone_weights, &args.weights) {
            (Some(p), _) => Init::BackboneWeights(p.clone()),
            (None, Some(p)) => Init::Detector(p.clone()),
            (None, None) => Init::Random,
        };
        let output = args.output.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from(format!("runs/{}-{backbone}-{secs}", dataset.name()))
        });
        let max_iter = solver.max_iter;
        Ok(Self {
            dataset,
            backbone,
            init,
            solver,
            batch_size,
            seed: args.seed,
            device: parse_device(&args.device)?,
            min_size: args.min_size,
            max_size: args.max_size,
            eval_period: args.eval_period.unwrap_or(0) as u64,
            checkpoint_period: match args.checkpoint_period {
                Some(p) => (p as u64).max(1),
                None => (max_iter / 5).clamp(1, 5000),
            },
            log_period: (args.log_period as u64).max(1),
            output,
            resume: args.resume,
            skip_bad_images: args.data.skip_bad_images,
        })
    }
}

/// The dataset named on the command line, if any.
pub fn dataset_spec(args: &DatasetArgs) -> anyhow::Result<Option<DatasetSpec>> {
    let shapes_knobs = [
        args.shapes_train_images,
        args.shapes_val_images,
        args.shapes_image_size,
    ];
    let spec = match (&args.dataset, &args.annotations, &args.images) {
        (Some(name), _, _) => Some(DatasetSpec::from_name(name)?),
        (None, Some(a), Some(i)) => Some(DatasetSpec::Files {
            annotations: a.clone(),
            images: i.clone(),
        }),
        _ => None,
    };
    match spec {
        Some(DatasetSpec::Shapes(mut c)) => {
            c.num_train = args.shapes_train_images.unwrap_or(c.num_train);
            c.num_val = args.shapes_val_images.unwrap_or(c.num_val);
            c.image_size = args.shapes_image_size.unwrap_or(c.image_size);
            if c.num_train == 0 || c.num_val == 0 || c.image_size < 32 {
                bail!("shapes: need at least one image per split and images of at least 32 px");
            }
            Ok(Some(DatasetSpec::Shapes(c)))
        }
        other if shapes_knobs.iter().any(Option::is_some) => {
            bail!(
                "--shapes-* options apply to `--dataset shapes` only, not to {}",
                other.map_or("this dataset".into(), |s| format!("`{}`", s.name()))
            )
        }
        other => Ok(other),
    }
}

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> anyhow::Result<Device> {
    let ordinal = match s {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("unknown device `{s}`: expected `cpu`, `cuda` or `cuda:N`"),
        },
    };
    Device::new_cuda(ordinal).with_context(|| {
        format!("cannot open {s}\nhint: CUDA needs a build with `--features cuda` and a GPU")
    })
}

/// The per-iteration seed of the samplers: a function of the run seed and the iteration only,
/// so a resumed run samples exactly as an uninterrupted one.
fn iteration_seed(seed: u64, iteration: u64) -> u64 {
    SplitMix64::derive(seed, &[0x5a4d_504c, iteration]).next_u64()
}

/// The model's targets from a loader batch.
fn targets_of(batch: &datasets::loader::Batch, device: &Device) -> anyhow::Result<Vec<Target>> {
    batch
        .targets
        .iter()
        .map(|t| {
            Ok(Target {
                boxes: t.boxes.to_device(device)?,
                labels: t.labels.to_device(device)?,
            })
        })
        .collect()
}

/// Builds the model over a parameter store that holds `loaded` weights and initialises the rest.
pub fn build_model(
    config: &DetectorConfig,
    loaded: HashMap<String, Tensor>,
    seed: u64,
    device: &Device,
) -> anyhow::Result<(FasterRcnn, Params)> {
    let trainable_layers = config.backbone.trainable_layers;
    let params = Params::new(
        loaded,
        move |name: &str| match name.strip_prefix("backbone.") {
            Some(rest) => backbones::is_trainable(rest, trainable_layers).unwrap_or(false),
            None => true,
        },
        seed,
    );
    let model = FasterRcnn::new(config, params.var_builder(DType::F32, device))?;
    Ok((model, params))
}

/// One optimisation step; returns the loss values.
pub fn step(
    model: &FasterRcnn,
    sgd: &mut Sgd,
    batch: &datasets::loader::Batch,
    options: &TrainOptions,
    iteration: u64,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let images = batch.images.to_device(&options.device)?;
    let targets = targets_of(batch, &options.device)?;
    let losses: Losses = model.losses(
        &images,
        &batch.image_sizes,
        &targets,
        iteration_seed(options.seed, iteration),
    )?;
    let values = losses.values()?;
    check_finite_losses(iteration, &values).context(
        "training stopped; the last checkpoint is intact\nhint: lower the learning rate (--lr) or clip gradients (--clip-grad-norm)",
    )?;
    let mut grads = losses.total()?.backward()?;
    if let Some(max_norm) = options.solver.clip_grad_norm {
        clip_grad_norm(sgd.params(), &mut grads, max_norm)?;
    }
    sgd.step(&grads, options.solver.lr_at(iteration))?;
    Ok(values)
}

/// Opens the training split and its category map.
pub fn open_split(spec: &DatasetSpec, split: Split) -> anyhow::Result<Arc<Dataset>> {
    Ok(Arc::new(Dataset::open(spec, split)?))
}

/// The detector config for a dataset's classes.
pub fn detector_config(
    options: &TrainOptions,
    map: &CategoryMap,
) -> anyhow::Result<DetectorConfig> {
    let mut config =
        DetectorConfig::from_backbone_name(&options.backbone, map.num_categories() + 1)?;
    if let Some(m) = options.min_size {
        config.transform.min_size = vec![m];
    }
    if let Some(m) = options.max_size {
        config.transform.max_size = m;
    }
    Ok(config)
}

/// `detect train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions::from_args(&args)?;
    crate::train_loop::train(&options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_seed_depends_on_run_seed_and_iteration_only() {
        assert_eq!(iteration_seed(1, 5), iteration_seed(1, 5));
        assert_ne!(iteration_seed(1, 5), iteration_seed(1, 6));
        assert_ne!(iteration_seed(1, 5), iteration_seed(2, 5));
    }

    #[test]
    fn devices_parse_or_explain() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("expected `cpu`, `cuda` or `cuda:N`"), "{err}");
    }
}
