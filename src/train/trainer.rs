//! The training loop of `detect train`: a prepared [`Run`], then per iteration
//! batch → losses → backward → SGD, with logging, periodic checkpoints and evaluation, Ctrl-C
//! handling, and the final model.
//!
//! Data-parallel, every rank runs this loop over its slice of each batch, and the ranks meet in
//! each step's collective calls and in evaluation (each rank runs the model over its slice of
//! the validation batches; rank 0 gathers the detections and scores them). Rank 0 alone prints,
//! logs and writes. A Ctrl-C on any rank stops every rank after the same iteration.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use datasets::coco::CategoryMap;
use datasets::dataset::Dataset;
use datasets::eval::Detection;
use datasets::loader::{DataLoader, Shard};

use crate::model::config::DetectorConfig;
use crate::model::evaluate::{coco_metrics, detect_all, EvalPass};
use crate::model::faster_rcnn::FasterRcnn;
use crate::profile::StageClock;
use crate::train::dist::{Collective, SingleProcess};
use crate::train::log_line::LogLine;
use crate::train::metrics::{EvalRecord, Record, TrainRecord};
use crate::train::options::TrainOptions;
use crate::train::progress::{Interrupt, TrainProgress};
use crate::train::run::Run;
use crate::train::step::step;

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

/// Runs `detect train` as configured, in one process.
pub fn train(options: &TrainOptions) -> anyhow::Result<()> {
    train_with(options, &mut SingleProcess)
}

/// Runs `detect train` as one rank of `collective`'s world. On an error, the other ranks are
/// told (they stop with an error quoting it).
pub fn train_with(options: &TrainOptions, collective: &mut dyn Collective) -> anyhow::Result<()> {
    let result = train_rank(options, collective);
    if let Err(e) = &result {
        collective.abort(&format!("{e:#}"));
    }
    result
}

fn train_rank(options: &TrainOptions, collective: &mut dyn Collective) -> anyhow::Result<()> {
    let mut run = Run::prepare(options, collective)?;
    let (lead, world) = (collective.rank() == 0, collective.world_size());
    let interrupt = Interrupt::install().unwrap_or_else(|_| Interrupt::manual());
    let max_iter = options.solver.max_iter;
    let progress = if lead {
        TrainProgress::new(run.start_iter, max_iter)
    } else {
        TrainProgress::hidden(run.start_iter, max_iter)
    };
    if lead {
        progress.println(format!(
            "training {} on {} ({} images, {} classes) for {} iterations, batch {}{}, output {}",
            run.detector.backbone_name,
            options.dataset.name(),
            run.loader.num_images(),
            run.map.num_categories(),
            max_iter,
            options.batch_size,
            if world > 1 {
                format!(
                    " ({} per worker on {world} workers)",
                    options.batch_size / world
                )
            } else {
                String::new()
            },
            options.output.display()
        ));
    }
    let (mut epoch, skip) = data_position(&run.loader, run.start_iter);
    // A resumed run continues mid-epoch: the batches before it are not decoded.
    let mut batches = run.loader.epoch_from(epoch, skip);
    let mut iteration = run.start_iter;
    let mut skipped = 0usize; // images left out by --skip-bad-images
    let mut epoch_batches = skip; // batches the current epoch has yielded (or resumed past)
    let (mut window_start, mut data_time) = (Instant::now(), 0.0f64);
    let mut window_iters = 0u64;
    let mut all_reduce_time = 0.0f64; // in the window, data-parallel
                                      // Data-parallel: the stop all ranks agreed on in the last step.
    let mut agreed_stop = false;
    // The bar is not seen in a log file: print a plain line every --log-period iterations.
    let stdout_is_terminal = std::io::stdout().is_terminal();
    while iteration < max_iter {
        let stop = if collective.is_single_process() {
            interrupt.requested()
        } else {
            agreed_stop
        };
        if stop {
            if lead {
                run.save_checkpoint(options, iteration)?;
                progress.finish();
                eprintln!(
                    "interrupted: saved a checkpoint at iteration {iteration}; continue with \
                     --resume"
                );
            }
            return Ok(());
        }
        let t = Instant::now();
        let mut clock = StageClock::start(options.profile, &options.device);
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
                batches = run.loader.epoch(epoch);
                continue;
            }
        };
        epoch_batches += 1;
        data_time += t.elapsed().as_secs_f64();
        // The loss components are read on logged iterations only (one scalar otherwise).
        let logged = (iteration + 1) % options.log_period == 0 || iteration + 1 == max_iter;
        let outcome = step(
            &run.model,
            &mut run.sgd,
            &batch,
            options,
            iteration,
            collective,
            interrupt.requested(),
            logged,
            &mut clock,
        )?;
        if let Some(profile) = clock.finish() {
            // Several workers each print theirs: say whose.
            let rank = match collective.is_single_process() {
                true => String::new(),
                false => format!("rank {} ", collective.rank()),
            };
            progress.println(format!(
                "{rank}profile iteration {}: {profile}",
                iteration + 1
            ));
        }
        agreed_stop = outcome.stop;
        all_reduce_time += outcome.all_reduce_seconds;
        iteration += 1;
        window_iters += 1;
        let lr = options.solver.lr_at(iteration - 1);
        match &outcome.components {
            Some(values) => progress.update(iteration, values, lr),
            None => progress.update_total(iteration, outcome.total, lr),
        }
        let components = outcome.components.filter(|_| logged);
        if let (Some(values), Some(log)) = (components, run.log.as_mut()) {
            let elapsed = window_start.elapsed().as_secs_f64();
            let all_reduce_seconds =
                (!collective.is_single_process()).then(|| all_reduce_time / window_iters as f64);
            if !stdout_is_terminal {
                println!(
                    "{}",
                    LogLine {
                        iteration,
                        max_iter,
                        losses: &values,
                        seconds_per_iteration: elapsed / window_iters as f64,
                        data_seconds: data_time / window_iters as f64,
                        all_reduce_seconds,
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
                all_reduce_seconds,
            }))?;
            (window_start, data_time, window_iters) = (Instant::now(), 0.0, 0);
            all_reduce_time = 0.0;
        }
        if lead && iteration % options.checkpoint_period == 0 && iteration < max_iter {
            run.save_checkpoint(options, iteration)?;
        }
        let periodic = options.eval_period > 0 && iteration % options.eval_period == 0;
        if let (true, Some(val)) = (periodic || iteration == max_iter, &run.val_set) {
            let metrics = run_eval(
                &run.model,
                val.clone(),
                (&run.map, &run.detector),
                options,
                &progress,
                collective,
            )?;
            if let (Some(metrics), Some(log)) = (metrics, run.log.as_mut()) {
                log.append(&Record::Eval(EvalRecord { iteration, metrics }))?;
            }
        }
    }
    skipped += report_skipped(&batches, epoch, &progress);
    progress.finish();
    if !lead {
        return Ok(());
    }
    if skipped > 0 {
        eprintln!("warning: {skipped} unreadable images were skipped (--skip-bad-images)");
    }
    run.save_checkpoint(options, iteration)?;
    run.save_final(options)
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

/// Evaluates on the validation split, each rank on its slice of every batch; rank 0 gathers
/// the detections, prints the summary and returns the metrics by name (None on other ranks).
fn run_eval(
    model: &FasterRcnn,
    val: Arc<Dataset>,
    (map, detector): (&CategoryMap, &DetectorConfig),
    options: &TrainOptions,
    progress: &TrainProgress,
    collective: &mut dyn Collective,
) -> anyhow::Result<Option<BTreeMap<String, f64>>> {
    let (detections, _) = detect_all(
        model,
        &EvalPass {
            dataset: val.clone(),
            dataset_categories: map,
            category_of_label: &|label| map.category_id(label),
            transform: detector.transform.clone(),
            batch_size: options.batch_size,
            skip_bad_images: options.skip_bad_images,
            device: &options.device,
            shard: Shard {
                index: collective.rank(),
                count: collective.world_size(),
            },
        },
        |_, _| {},
    )?;
    let detections = if collective.is_single_process() {
        detections
    } else {
        let Some(parts) = collective.gather(&serde_json::to_vec(&detections)?)? else {
            return Ok(None);
        };
        let mut all = Vec::new();
        for (rank, part) in parts.iter().enumerate() {
            let d: Vec<Detection> = serde_json::from_slice(part)
                .with_context(|| format!("reading rank {rank}'s detections"))?;
            all.extend(d);
        }
        all
    };
    let metrics = coco_metrics(&val, &detections)?;
    progress.println(metrics.summary());
    Ok(Some(
        datasets::eval::STAT_NAMES
            .iter()
            .zip(metrics.stats)
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
    ))
}
