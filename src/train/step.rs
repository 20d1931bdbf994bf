//! One training step (batch → losses → backward → clip → SGD) and what it needs: the model
//! over its parameter store, the detector config for a dataset's classes, the per-iteration
//! sampler seed.
//!
//! Data-parallel, each rank holds a slice of the global batch and the step adds two collective
//! calls. After the forward pass, the ranks sum their sample counts (and flags: a stop request,
//! a non-finite loss); each rank then scales its losses by `local count × world / global
//! count`, which makes the mean over ranks exactly the loss of the whole batch (each loss is
//! divided by the number of samples in the batch, torchvision's normalisation), even when
//! images contribute unequal sample counts. After backward, the gradients are averaged over
//! the ranks ([`all_reduce_mean`]), with the losses riding along for the log.
use std::collections::HashMap;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use datasets::coco::CategoryMap;
use datasets::rng::SplitMix64;
use heads::roi_heads::Target;

use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::{FasterRcnn, Losses};
use crate::profile::{Stage, StageClock};
use crate::train::dist::{all_reduce_mean, Collective};
use crate::train::options::TrainOptions;
use crate::train::solver::{check_finite_losses, clip_grad_norm, Sgd};
use crate::weights::params::Params;
use heads::ops::transfer;

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
                boxes: transfer::to_device(&t.boxes, device)?,
                labels: transfer::to_device(&t.labels, device)?,
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

/// What a step reports.
pub struct StepOutcome {
    /// The whole batch's total loss (the one value read every iteration in one process: the
    /// non-finite check).
    pub total: f64,
    /// The whole batch's four losses, when asked for (logged iterations) or when several
    /// workers ran (they exchange them every step).
    pub components: Option<Vec<(&'static str, f64)>>,
    /// A stop (Ctrl-C) was requested on some rank: every rank stops after this step.
    pub stop: bool,
    /// Seconds in collective calls (0 in one process).
    pub all_reduce_seconds: f64,
}

/// One optimisation step on this rank's slice of the batch, `stop` its own stop request.
/// Reads the total loss (to stop on a non-finite one before it reaches the weights) and, when
/// `read_components`, the four loss values. `clock` gets a lap after each stage (`--profile`;
/// [`StageClock::off`] otherwise).
#[allow(clippy::too_many_arguments)]
pub fn step(
    model: &FasterRcnn,
    sgd: &mut Sgd,
    batch: &datasets::loader::Batch,
    options: &TrainOptions,
    iteration: u64,
    collective: &mut dyn Collective,
    stop: bool,
    read_components: bool,
    clock: &mut StageClock,
) -> anyhow::Result<StepOutcome> {
    let world = collective.world_size();
    let single = collective.is_single_process();
    // This rank's first image in the global batch: the samplers draw per global image.
    let first_image = (collective.rank() * options.batch_size / world) as u64;
    let images = transfer::to_device(&batch.images, &options.device)?;
    let targets = targets_of(batch, &options.device)?;
    clock.lap(Stage::Data)?;
    let losses: Losses = model.losses_timed(
        &images,
        &batch.image_sizes,
        &targets,
        iteration_seed(options.seed, iteration),
        first_image,
        clock,
    )?;
    let mut all_reduce_seconds = 0.0;
    let (losses, stop) = if single {
        (losses, stop)
    } else {
        share_of_batch(losses, iteration, collective, stop, &mut all_reduce_seconds)?
    };
    let total_loss = losses.total()?;
    let total: f64 = transfer::read_scalar(
        "losses: total (non-finite check)",
        &total_loss.to_dtype(DType::F64)?,
    )?;
    if !total.is_finite() {
        // The error path reads every component, so the message names the culprit.
        let values = losses.values()?;
        check_finite_losses(iteration, &values).context(
            "training stopped; the last checkpoint is intact\nhint: lower the learning rate (--lr) or clip gradients (--clip-grad-norm)",
        )?;
        anyhow::bail!("non-finite total loss {total} at iteration {iteration}");
    }
    let mut grads = total_loss.backward()?;
    clock.lap(Stage::Backward)?;
    let (total, components) = if single {
        let components = read_components.then(|| losses.values()).transpose()?;
        (total, components)
    } else {
        let values = losses.values()?;
        let local: Vec<f32> = values.iter().map(|v| v.1 as f32).collect();
        // The backward pass is queued on the device: finish it before the clock starts.
        options.device.synchronize()?;
        let t = std::time::Instant::now();
        let sums = all_reduce_mean(collective, sgd.params(), &mut grads, &local)?;
        all_reduce_seconds += t.elapsed().as_secs_f64();
        clock.lap(Stage::AllReduce)?;
        let mean = |(i, (name, _)): (usize, &(&'static str, f64))| {
            (*name, f64::from(sums[i]) / world as f64)
        };
        let values: Vec<(&'static str, f64)> = values.iter().enumerate().map(mean).collect();
        (values.iter().map(|v| v.1).sum(), Some(values))
    };
    if let Some(max_norm) = options.solver.clip_grad_norm {
        clip_grad_norm(sgd.params(), &mut grads, max_norm)?;
    }
    sgd.step(&grads, options.solver.lr_at(iteration))?;
    clock.lap(Stage::Optimizer)?;
    Ok(StepOutcome {
        total,
        components,
        stop,
        all_reduce_seconds,
    })
}

/// This rank's losses scaled to its share of the whole batch's (see the module docs), and
/// whether any rank asked to stop. A non-finite loss on any rank stops every rank.
fn share_of_batch(
    losses: Losses,
    iteration: u64,
    collective: &mut dyn Collective,
    stop: bool,
    seconds: &mut f64,
) -> anyhow::Result<(Losses, bool)> {
    let world = collective.world_size() as f64;
    let n = losses.num_samples;
    let finite = losses.values()?.iter().all(|v| v.1.is_finite());
    let flags = [
        n.rpn as f32,
        n.roi as f32,
        f32::from(u8::from(stop)),
        f32::from(u8::from(!finite)),
    ];
    let t = std::time::Instant::now();
    let sums = collective.all_reduce_sum(&Tensor::new(&flags, &Device::Cpu)?)?;
    *seconds += t.elapsed().as_secs_f64();
    let sums: Vec<f32> = transfer::read("data parallel: sample counts and stop flags", &sums)?;
    if finite && sums[3] > 0.0 {
        anyhow::bail!(
            "iteration {iteration}: another rank's loss is non-finite (it reports which); \
             training stopped; the last checkpoint is intact\nhint: lower the learning rate \
             (--lr) or clip gradients (--clip-grad-norm)"
        );
    }
    // Sample counts are whole numbers far below 2^24: exact in f32.
    let rpn = n.rpn as f64 * world / f64::from(sums[0]);
    let roi = n.roi as f64 * world / f64::from(sums[1]);
    let scaled = if rpn == 1.0 && roi == 1.0 {
        losses
    } else {
        losses.scaled(rpn, roi)?
    };
    Ok((scaled, sums[2] > 0.0))
}

/// The detector config for a dataset's classes.
pub fn detector_config(
    options: &TrainOptions,
    map: &CategoryMap,
) -> anyhow::Result<DetectorConfig> {
    let mut config =
        DetectorConfig::from_backbone_name(&options.backbone, map.num_categories() + 1)?;
    if let Some(m) = &options.min_size {
        config.transform.min_size = m.clone();
    }
    if let Some(m) = options.max_size {
        config.transform.max_size = m;
    }
    Ok(config)
}

#[cfg(test)]
mod tests;
