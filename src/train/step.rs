//! One training step (batch → losses → backward → clip → SGD) and what it needs: the model
//! over its parameter store, the detector config for a dataset's classes, the per-iteration
//! sampler seed.
use std::collections::HashMap;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use datasets::coco::CategoryMap;
use datasets::rng::SplitMix64;
use heads::roi_heads::Target;

use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::{FasterRcnn, Losses};
use crate::profile::{Stage, StageClock};
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

/// The losses a step reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLosses {
    /// The total loss: the one value read every iteration (the non-finite check).
    pub total: f64,
    /// Each component, read only when asked for (logged iterations).
    pub components: Option<Vec<(&'static str, f64)>>,
}

/// One optimisation step. Reads the total loss (to stop on a non-finite one before it reaches
/// the weights) and, when `read_components`, the four loss values. `clock` gets a lap after
/// each stage (`--profile`; [`StageClock::off`] otherwise).
pub fn step(
    model: &FasterRcnn,
    sgd: &mut Sgd,
    batch: &datasets::loader::Batch,
    options: &TrainOptions,
    iteration: u64,
    read_components: bool,
    clock: &mut StageClock,
) -> anyhow::Result<StepLosses> {
    let images = transfer::to_device(&batch.images, &options.device)?;
    let targets = targets_of(batch, &options.device)?;
    clock.lap(Stage::Data)?;
    let losses: Losses = model.losses_timed(
        &images,
        &batch.image_sizes,
        &targets,
        iteration_seed(options.seed, iteration),
        clock,
    )?;
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
    if let Some(max_norm) = options.solver.clip_grad_norm {
        clip_grad_norm(sgd.params(), &mut grads, max_norm)?;
    }
    sgd.step(&grads, options.solver.lr_at(iteration))?;
    clock.lap(Stage::Optimizer)?;
    let components = read_components.then(|| losses.values()).transpose()?;
    Ok(StepLosses { total, components })
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
