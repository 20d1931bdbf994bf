//! The training loop of `detect train`: resume or start, then per iteration
//! batch → losses → backward → SGD, with logging, periodic checkpoints and evaluation, Ctrl-C
//! handling, and the final model.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use candle_core::Tensor;
use datasets::coco::CategoryMap;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::loader::{DataLoader, LoaderConfig, Mode};
use datasets::shapes::Split;
use serde_json::json;

use crate::atomic::write_atomic;
use crate::commands::open_split;
use crate::model::config::DetectorConfig;
use crate::model::evaluate::{evaluate, EvalPass};
use crate::model::faster_rcnn::FasterRcnn;
use crate::train::checkpoint::{save_model, Checkpoint, Checkpointer, ModelMeta, MODEL_FINAL};
use crate::train::log_line::LogLine;
use crate::train::metrics::{read_records, EvalRecord, MetricsLog, Record, TrainRecord};
use crate::train::options::TrainOptions;
use crate::train::progress::{Interrupt, TrainProgress};
use crate::train::solver::Sgd;
use crate::train::step::{build_model, step};

/// Checkpoints kept in the output folder.
const KEEP_CHECKPOINTS: usize = 3;

/// What a run resolves to: written to `config.json`, stored in checkpoints and the final model.
fn resolved_config(
    options: &TrainOptions,
    detector: &DetectorConfig,
    map: &CategoryMap,
) -> serde_json::Value {
    json!({
        "detector": detector,
        "categories": map,
        "solver": options.solver,
        "dataset": options.dataset.name(),
        "batch_size": options.batch_size,
        "seed": options.seed,
    })
}

/// Iteration `iteration`'s place in the data: (epoch, batch index within it).
fn data_position(loader: &DataLoader, iteration: u64) -> (u64, usize) {
    let (mut epoch, mut left) = (0u64, iteration as usize);
    loop {
        // Never 0: `check_enough_images` ran before.
        let n = loader.epoch_plan(epoch).len().max(1);
        if left < n {
            return (epoch, left);
        }
        left -= n;
        epoch += 1;
    }
}

/// Runs `detect train` as configured.
pub fn train(options: &TrainOptions) -> anyhow::Result<()> {
    let out = &options.output;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating output folder {}", out.display()))?;
    let checkpointer = Checkpointer::new(out, KEEP_CHECKPOINTS);
    let resume = if options.resume {
        let c = checkpointer
            .load_last(&options.device)?
            .with_context(|| format!("--resume: no last_checkpoint in {}", out.display()))?;
        Some(c)
    } else {
        None
    };

    let train_set = open_split(&options.dataset, Split::Train)?;
    let map = train_set.coco.category_map();
    let start = crate::train::start::plan(options, &map)?;
    let detector = start.detector.clone();
    let config = resolved_config(options, &detector, &map);
    if let Some(c) = &resume {
        check_same_run(&c.config, &config)?;
    }
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )
    .with_context(|| format!("writing {}", out.join("config.json").display()))?;

    let loaded = match &resume {
        Some(c) => c.model.clone().into_iter().collect(),
        None => start.weights(&options.device)?,
    };
    let (model, params) = build_model(&detector, loaded, options.seed, &options.device)?;
    if resume.is_none() {
        start.check_start(&params)?;
    }
    let mut sgd = Sgd::new(
        params.trainable(),
        options.solver.momentum,
        options.solver.weight_decay,
    )?;
    let start_iter = match &resume {
        Some(c) => {
            sgd.load_state(&c.momentum.clone().into_iter().collect())?;
            c.iteration
        }
        None => 0,
    };
    let metrics_path = out.join("metrics.jsonl");
    let mut log = if resume.is_some() {
        MetricsLog::resume(&metrics_path, start_iter)?
    } else {
        MetricsLog::create(&metrics_path)?
    };

    let loader = DataLoader::new(
        train_set,
        &map,
        detector.transform.clone(),
        LoaderConfig {
            batch_size: options.batch_size,
            seed: options.seed,
            skip_bad_images: options.skip_bad_images,
            ..LoaderConfig::default()
        },
        Mode::Train,
    );
    check_enough_images(&loader, options)?;
    let stats = loader.target_stats();
    eprintln!(
        "targets: {} crowd regions left out, {} boxes under 1 px dropped, {} images without boxes \
         not trained on",
        stats.crowd_excluded, stats.small_dropped, stats.empty_images_filtered
    );
    let val_set = match &options.dataset {
        // One annotation file is one split: evaluating on it would score the training images.
        DatasetSpec::Files { .. } => {
            eprintln!(
                "note: a COCO --annotations file gives no validation split, so no evaluation runs \
                 during training\nhint: evaluate the result with `detect eval --weights \
                 <output>/model_final.safetensors --annotations VAL.json --images VAL_DIR`"
            );
            None
        }
        _ => match open_split(&options.dataset, Split::Val) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("note: no validation split, evaluation is skipped ({e:#})");
                None
            }
        },
    };
    let save = |iteration: u64, sgd: &Sgd| -> anyhow::Result<()> {
        let model = params.state_dict();
        // A step with a finite loss can still overflow the weights: never checkpoint those.
        if let Some(name) = first_non_finite(&model)? {
            anyhow::bail!(
                "weight `{name}` is non-finite after iteration {iteration}; training stopped \
                 before saving, the last checkpoint is intact\nhint: lower the learning rate \
                 (--lr) or clip gradients (--clip-grad-norm)"
            );
        }
        checkpointer.save(&Checkpoint {
            iteration,
            model,
            momentum: sgd.state(),
            rng_state: json!({ "seed": options.seed, "iteration": iteration }),
            config: config.clone(),
        })?;
        let plotted = read_records(&metrics_path)
            .map_err(anyhow::Error::from)
            .and_then(|r| {
                crate::train::plot::plot_losses(&r, &out.join("loss.png"), &options.dataset.name())
                    .map_err(anyhow::Error::from)
            });
        if let Err(e) = plotted {
            eprintln!("warning: loss.png not updated: {e:#}");
        }
        Ok(())
    };

    let interrupt = Interrupt::install().unwrap_or_else(|_| Interrupt::manual());
    let max_iter = options.solver.max_iter;
    let progress = TrainProgress::new(start_iter, max_iter);
    progress.println(format!(
        "training {} on {} ({} images, {} classes) for {} iterations, batch {}, output {}",
        detector.backbone_name,
        options.dataset.name(),
        loader.num_images(),
        map.num_categories(),
        max_iter,
        options.batch_size,
        out.display()
    ));
    let (mut epoch, skip) = data_position(&loader, start_iter);
    // A resumed run continues mid-epoch: the batches before it are not decoded.
    let mut batches = loader.epoch_from(epoch, skip);
    let mut iteration = start_iter;
    let mut skipped = 0usize; // images left out by --skip-bad-images
    let mut epoch_batches = skip; // batches the current epoch has yielded (or resumed past)
    let (mut window_start, mut data_time) = (Instant::now(), 0.0f64);
    let mut window_iters = 0u64;
    // The bar is not seen in a log file: print a plain line every --log-period iterations.
    let stdout_is_terminal = std::io::stdout().is_terminal();
    while iteration < max_iter {
        if interrupt.requested() {
            save(iteration, &sgd)?;
            progress.finish();
            eprintln!(
                "interrupted: saved a checkpoint at iteration {iteration}; continue with --resume"
            );
            return Ok(());
        }
        let t = Instant::now();
        let batch = match batches.next() {
            Some(b) => b?,
            None => {
                skipped += report_skipped(&batches, epoch, &progress);
                if epoch_batches == 0 {
                    // Every batch of the epoch lost all its images: the next would too.
                    anyhow::bail!(
                        "epoch {epoch}: all {} images were unreadable and skipped \
                         (--skip-bad-images), nothing is left to train on",
                        batches.skipped()
                    );
                }
                epoch_batches = 0;
                epoch += 1;
                batches = loader.epoch(epoch);
                continue;
            }
        };
        epoch_batches += 1;
        data_time += t.elapsed().as_secs_f64();
        let values = step(&model, &mut sgd, &batch, options, iteration)?;
        iteration += 1;
        window_iters += 1;
        let lr = options.solver.lr_at(iteration - 1);
        progress.update(iteration, &values, lr);
        if iteration % options.log_period == 0 || iteration == max_iter {
            let elapsed = window_start.elapsed().as_secs_f64();
            if !stdout_is_terminal {
                println!(
                    "{}",
                    LogLine {
                        iteration,
                        max_iter,
                        losses: &values,
                        seconds_per_iteration: elapsed / window_iters as f64,
                        data_seconds: data_time / window_iters as f64,
                        lr,
                    }
                );
            }
            log.append(&Record::Train(TrainRecord {
                iteration,
                losses: values.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
                total_loss: values.iter().map(|v| v.1).sum(),
                lr,
                seconds_per_iteration: elapsed / window_iters as f64,
                data_seconds: data_time / window_iters as f64,
            }))?;
            (window_start, data_time, window_iters) = (Instant::now(), 0.0, 0);
        }
        if iteration % options.checkpoint_period == 0 && iteration < max_iter {
            save(iteration, &sgd)?;
        }
        let periodic = options.eval_period > 0 && iteration % options.eval_period == 0;
        if let (true, Some(val)) = (periodic || iteration == max_iter, &val_set) {
            let metrics = run_eval(&model, val.clone(), &map, &detector, options, &progress)?;
            log.append(&Record::Eval(EvalRecord { iteration, metrics }))?;
        }
    }
    skipped += report_skipped(&batches, epoch, &progress);
    progress.finish();
    if skipped > 0 {
        eprintln!("warning: {skipped} unreadable images were skipped (--skip-bad-images)");
    }
    save(iteration, &sgd)?;
    let final_path = out.join(MODEL_FINAL);
    let meta = ModelMeta {
        class_names: map.entries().iter().map(|e| e.name.clone()).collect(),
        config: config.clone(),
    };
    save_model(&final_path, &params.state_dict(), &meta)?;
    eprintln!("wrote {}", final_path.display());
    Ok(())
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

/// The first tensor (by name) holding a NaN or an infinity.
fn first_non_finite(tensors: &BTreeMap<String, Tensor>) -> anyhow::Result<Option<String>> {
    for (name, t) in tensors {
        if !t.dtype().is_float() {
            continue;
        }
        // The sum of x * 0 is NaN exactly when some x is NaN or infinite.
        let s: f32 = t
            .affine(0.0, 0.0)?
            .sum_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_scalar()?;
        if !s.is_finite() {
            return Ok(Some(name.clone()));
        }
    }
    Ok(None)
}

/// Prints the images an epoch skipped (with `--skip-bad-images`) and returns their count.
fn report_skipped(
    batches: &datasets::loader::EpochBatches,
    epoch: u64,
    progress: &TrainProgress,
) -> usize {
    for message in batches.skipped_messages() {
        progress.println(format!("warning: epoch {epoch}: skipped {message}"));
    }
    batches.skipped()
}

/// `--resume` continues the same run: its resolved config (model, solver, data, seed) must
/// equal the checkpoint's.
fn check_same_run(saved: &serde_json::Value, now: &serde_json::Value) -> anyhow::Result<()> {
    let keys = [
        "detector",
        "categories",
        "solver",
        "dataset",
        "batch_size",
        "seed",
    ];
    let differ: Vec<&str> = keys
        .into_iter()
        .filter(|k| saved.get(k) != now.get(k))
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "--resume: these settings differ from the checkpoint's: {}\nhint: resume with the \
         options of the interrupted run (they are in its config.json)",
        differ.join(", ")
    )
}

/// Evaluates on the validation split, prints the summary, returns the metrics by name.
fn run_eval(
    model: &FasterRcnn,
    val: Arc<Dataset>,
    map: &CategoryMap,
    detector: &DetectorConfig,
    options: &TrainOptions,
    progress: &TrainProgress,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let output = evaluate(
        model,
        &EvalPass {
            dataset: val,
            dataset_categories: map,
            category_of_label: &|label| map.category_id(label),
            transform: detector.transform.clone(),
            batch_size: options.batch_size,
            skip_bad_images: options.skip_bad_images,
            device: &options.device,
        },
        |_, _| {},
    )?;
    progress.println(output.metrics.summary());
    Ok(datasets::eval::STAT_NAMES
        .iter()
        .zip(output.metrics.stats)
        .map(|(n, v)| (n.to_string(), v))
        .collect())
}
