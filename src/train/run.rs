//! A training run set up before its first iteration: the output folder, the checkpoint it
//! resumes from (if any), the resolved config written to `config.json`, the model and its
//! parameters, the optimiser, `metrics.jsonl`, the training loader and the validation split.
//!
//! Data-parallel, only rank 0 touches the output folder (it alone reads the checkpoint to
//! resume from and writes `config.json` and `metrics.jsonl`); [`crate::train::replicas`] then
//! gives every rank rank 0's start, and each rank's loader builds its slice of every batch.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use datasets::coco::CategoryMap;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::loader::{DataLoader, LoaderConfig, Mode, Shard};
use datasets::shapes::Split;

use crate::commands::open_split;
use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::FasterRcnn;
use crate::train::checkpoint::Checkpointer;
use crate::train::dist::Collective;
use crate::train::metrics::MetricsLog;
use crate::train::options::TrainOptions;
use crate::train::run_config::{check_same_run, resolved_config, write_config};
use crate::train::solver::Sgd;
use crate::train::step::build_model;
use crate::weights::params::Params;

/// Checkpoints kept in the output folder.
const KEEP_CHECKPOINTS: usize = 3;

/// Everything the training loop works on.
pub struct Run {
    pub checkpointer: Checkpointer,
    /// The training split's categories (model labels 1..K).
    pub map: CategoryMap,
    pub detector: DetectorConfig,
    /// The resolved config (see [`crate::train::run_config`]).
    pub config: serde_json::Value,
    pub model: FasterRcnn,
    pub params: Params,
    pub sgd: Sgd,
    /// The first iteration to run: 0, or the resumed checkpoint's.
    pub start_iter: u64,
    /// `metrics.jsonl` (rank 0 only).
    pub log: Option<MetricsLog>,
    pub metrics_path: PathBuf,
    pub loader: DataLoader,
    /// None when the dataset has no validation split: no evaluation runs.
    pub val_set: Option<Arc<Dataset>>,
}

impl Run {
    /// Sets up the run `options` describe, resuming from the output folder's last checkpoint
    /// with `--resume`.
    pub fn prepare(options: &TrainOptions, collective: &mut dyn Collective) -> anyhow::Result<Run> {
        let out = &options.output;
        let (rank, world) = (collective.rank(), collective.world_size());
        if rank == 0 {
            std::fs::create_dir_all(out)
                .with_context(|| format!("creating output folder {}", out.display()))?;
        }
        let checkpointer = Checkpointer::new(out, KEEP_CHECKPOINTS);
        let resume = if options.resume && rank == 0 {
            let c = checkpointer
                .load_last(&options.device)?
                .with_context(|| format!("--resume: no last_checkpoint in {}", out.display()))?;
            Some(c)
        } else {
            None
        };

        let train_set = open_split(&options.dataset, Split::Train, options.decode_limits)?;
        let map = train_set.coco.category_map();
        let start = crate::train::start::plan(options, &map)?;
        let detector = start.detector.clone();
        let config = resolved_config(options, &detector, &map);
        if let Some(c) = &resume {
            check_same_run(&c.config, &config)?;
        }
        if !collective.is_single_process() {
            crate::train::replicas::check_same_config(collective, &config)?;
        }
        if rank == 0 {
            write_config(out, &config)?;
        }

        let loaded = match &resume {
            Some(c) => c.model.clone().into_iter().collect(),
            None => start.weights(&options.device)?,
        };
        let (mut model, params) = build_model(&detector, loaded, options.seed, &options.device)?;
        model.set_autocast(options.precision.autocast());
        if resume.is_none() {
            start.check_start(&params)?;
        }
        let mut sgd = Sgd::new(
            params.trainable(),
            options.solver.momentum,
            options.solver.weight_decay,
        )?;
        let mut start_iter = match &resume {
            Some(c) => {
                sgd.load_state(&c.momentum.clone().into_iter().collect())?;
                c.iteration
            }
            None => 0,
        };
        if !collective.is_single_process() {
            start_iter = crate::train::replicas::sync_start(
                collective,
                &params,
                &mut sgd,
                start_iter,
                options.resume,
            )?;
        }
        let metrics_path = out.join("metrics.jsonl");
        let log = match (rank, &resume) {
            (0, Some(_)) => Some(MetricsLog::resume(&metrics_path, start_iter)?),
            (0, None) => Some(MetricsLog::create(&metrics_path)?),
            _ => None,
        };

        let loader = DataLoader::new(
            train_set,
            &map,
            detector.transform.clone(),
            LoaderConfig {
                batch_size: options.batch_size,
                seed: options.seed,
                skip_bad_images: options.skip_bad_images,
                shard: Shard {
                    index: rank,
                    count: world,
                },
                // The node's cores shared among its workers.
                num_workers: (LoaderConfig::default().num_workers
                    / options.dist.local_workers().unwrap_or(1))
                .max(1),
                ..LoaderConfig::default()
            },
            Mode::Train,
        );
        check_enough_images(&loader, options)?;
        let stats = loader.target_stats();
        if rank == 0 {
            eprintln!(
            "targets: {} crowd regions left out, {} boxes under 1 px dropped, {} images without \
             boxes not trained on",
            stats.crowd_excluded, stats.small_dropped, stats.empty_images_filtered
            );
        }
        Ok(Run {
            checkpointer,
            map,
            detector,
            config,
            model,
            params,
            sgd,
            start_iter,
            log,
            metrics_path,
            loader,
            val_set: open_val_split(options, rank == 0),
        })
    }
}

/// The validation split evaluated during training, if the dataset has one.
fn open_val_split(options: &TrainOptions, report: bool) -> Option<Arc<Dataset>> {
    match &options.dataset {
        // One annotation file is one split: evaluating on it would score the training images.
        DatasetSpec::Files { .. } if !report => None,
        DatasetSpec::Files { .. } => {
            eprintln!(
                "note: a COCO --annotations file gives no validation split, so no evaluation runs \
                 during training\nhint: evaluate the result with `detect eval --weights \
                 <output>/model_final.safetensors --annotations VAL.json --images VAL_DIR`"
            );
            None
        }
        _ => match open_split(&options.dataset, Split::Val, options.decode_limits) {
            Ok(v) => Some(v),
            Err(e) => {
                if report {
                    eprintln!("note: no validation split, evaluation is skipped ({e:#})");
                }
                None
            }
        },
    }
}

/// Training needs at least one full batch per epoch (the last partial batch is dropped, as in
/// torchvision): an error naming both counts when there are fewer usable images than that.
fn check_enough_images(loader: &DataLoader, options: &TrainOptions) -> anyhow::Result<()> {
    let n = loader.num_images();
    if n == 0 {
        anyhow::bail!(
            "the training split of `{}` has no image with a box",
            options.dataset.name()
        );
    }
    if loader.epoch_plan(0).is_empty() {
        anyhow::bail!(
            "the training split of `{}` has {n} usable image{}, fewer than the batch size {}: \
             no full batch can be formed\nhint: lower --batch-size to at most {n}, or add images",
            options.dataset.name(),
            if n == 1 { "" } else { "s" },
            options.batch_size
        );
    }
    Ok(())
}
