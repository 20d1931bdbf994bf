//! Where a training run's weights start: the detector config they imply and the tensors.
//!
//! - random (`--backbone-weights none`): nothing loaded, every backbone stage trains (5);
//! - ImageNet backbone weights (`imagenet` from the registry, or a file): the body is loaded,
//!   FPN and heads start fresh, 3 stages train; every body weight must come from the file and
//!   every file key must be used (a different key layout is refused, listing the keys);
//! - a whole detector (a file or a registry name such as `torchvision:fasterrcnn_resnet50_fpn`):
//!   everything is loaded, except, when its class count differs from the dataset's, the box
//!   predictor's `cls_score` and `bbox_pred`, which start as in a fresh model (torchvision's
//!   fine-tuning recipe: swap in a new `FastRCNNPredictor`). FrozenBatchNorm's eps follows the
//!   weights' origin (torchvision's COCO files: 0.0) and is recorded in the model's config.
//!
//! [`plan`] decides the config without downloading anything (so `--resume` can compare
//! configs offline); [`StartPlan::weights`] fetches and reads the file.
use std::collections::HashMap;

use anyhow::bail;
use candle_core::{Device, Tensor};
use datasets::coco::{CategoryMap, COCO_TORCHVISION_NUM_CLASSES};

use crate::model::config::DetectorConfig;
use crate::train::options::{Init, TrainOptions};
use crate::train::step::detector_config;
use crate::weights::load::{entry_config, num_classes_of, read_weight_map, trained_model_meta};
use crate::weights::params::Params;
use crate::weights::registry::{Registry, WeightsKind, WeightsRef};
use crate::weights::resolve::{registry_entry, resolve};

/// The box predictor's tensors, replaced when the class count changes.
pub const PREDICTOR_KEYS: [&str; 4] = [
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.cls_score.bias",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.box_predictor.bbox_pred.bias",
];

/// Backbone stages that train by default (torchvision: 3 from pretrained weights, all 5 from
/// random ones, `_validate_trainable_layers`).
const TRAINABLE_PRETRAINED: usize = 3;
const TRAINABLE_RANDOM: usize = 5;

/// What to load.
#[derive(Debug, Clone)]
enum Source {
    None,
    Backbone(WeightsRef),
    Detector(WeightsRef),
}

/// The run's detector config and where its weights come from.
#[derive(Debug, Clone)]
pub struct StartPlan {
    pub detector: DetectorConfig,
    source: Source,
}

/// Decides the detector config for `options` on a dataset with categories `map`.
pub fn plan(options: &TrainOptions, map: &CategoryMap) -> anyhow::Result<StartPlan> {
    let num_classes = map.num_categories() + 1;
    let mut detector = detector_config(options, map)?;
    let (source, trainable) = match &options.init {
        Init::Random => (Source::None, TRAINABLE_RANDOM),
        Init::ImageNet => {
            let name = Registry::load()?
                .imagenet_name(&options.backbone)?
                .to_string();
            let value = WeightsRef::Name(name);
            backbone_eps(&value, options, &mut detector)?;
            (Source::Backbone(value), TRAINABLE_PRETRAINED)
        }
        Init::BackboneWeights(value) => {
            backbone_eps(value, options, &mut detector)?;
            (Source::Backbone(value.clone()), TRAINABLE_PRETRAINED)
        }
        Init::Detector(value) => {
            detector = detector_from(value, options, detector, num_classes)?;
            (Source::Detector(value.clone()), TRAINABLE_PRETRAINED)
        }
    };
    detector.num_classes = num_classes;
    detector.backbone.trainable_layers = options.trainable_backbone_layers.unwrap_or(trainable);
    if let Some(m) = &options.min_size {
        detector.transform.min_size = m.clone();
    }
    if let Some(m) = options.max_size {
        detector.transform.max_size = m;
    }
    Ok(StartPlan { detector, source })
}

/// ImageNet weights: a registry entry must be for this backbone and sets the eps.
fn backbone_eps(
    value: &WeightsRef,
    options: &TrainOptions,
    detector: &mut DetectorConfig,
) -> anyhow::Result<()> {
    if let WeightsRef::Name(name) = value {
        let entry = registry_entry(name, WeightsKind::Backbone)?;
        if entry.architecture != options.backbone {
            bail!(
                "`{name}` holds {} weights, but the backbone is {}\nhint: --backbone {}",
                entry.architecture,
                options.backbone,
                entry.architecture
            );
        }
        detector.backbone.body.bn_eps = entry.frozen_bn_eps;
    }
    Ok(())
}

/// A whole detector: its architecture comes from the registry or the file when they say.
fn detector_from(
    value: &WeightsRef,
    options: &TrainOptions,
    fallback: DetectorConfig,
    num_classes: usize,
) -> anyhow::Result<DetectorConfig> {
    let (config, origin) = match value {
        WeightsRef::Name(name) => {
            let entry = registry_entry(name, WeightsKind::Detector)?;
            (entry_config(&entry, num_classes)?, format!("`{name}`"))
        }
        WeightsRef::File(path) => match trained_model_meta(path)? {
            Some(meta) => {
                let detector = meta.config.get("detector").cloned().unwrap_or_default();
                let config: DetectorConfig = serde_json::from_value(detector).map_err(|e| {
                    anyhow::anyhow!("`{}`: reading its detector config: {e}", path.display())
                })?;
                (config, format!("`{}`", path.display()))
            }
            None => {
                // torchvision layout: the architecture is --backbone's; eps from the class count.
                let map = read_weight_map(path, &Device::Cpu)?;
                let mut config = fallback;
                if num_classes_of(&map, path)? == COCO_TORCHVISION_NUM_CLASSES {
                    config.backbone.body.bn_eps = 0.0;
                }
                return Ok(config);
            }
        },
    };
    if options.backbone_given && options.backbone != config.backbone_name {
        bail!(
            "--backbone {} disagrees with {origin}, a {} detector\nhint: leave --backbone out",
            options.backbone,
            config.backbone_name
        );
    }
    Ok(config)
}

impl StartPlan {
    /// The tensors to start from (fetching a registry file if needed), by detector names.
    pub fn weights(&self, device: &Device) -> anyhow::Result<HashMap<String, Tensor>> {
        match &self.source {
            Source::None => Ok(HashMap::new()),
            Source::Backbone(value) => {
                let resolved = resolve(value, WeightsKind::Backbone)?;
                let mut tensors = read_weight_map(&resolved.path, device)?.tensors().clone();
                let others: Vec<String> = tensors
                    .keys()
                    .filter(|k| !k.starts_with("backbone.body."))
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    bail!(
                        "`{}` is not ImageNet backbone weights: it holds {}\nhint: a whole \
                         detector starts a run with --weights",
                        resolved.path.display(),
                        listed(&others)
                    );
                }
                tensors.retain(|k, _| k.starts_with("backbone.body."));
                Ok(tensors)
            }
            Source::Detector(value) => {
                let resolved = resolve(value, WeightsKind::Detector)?;
                let map = read_weight_map(&resolved.path, device)?;
                let theirs = num_classes_of(&map, &resolved.path)?;
                let mut tensors = map.tensors().clone();
                if theirs != self.detector.num_classes {
                    for key in PREDICTOR_KEYS {
                        tensors.remove(key);
                    }
                    eprintln!(
                        "note: the weights have {theirs} classes, the dataset {} (background \
                         included): re-initialised roi_heads.box_predictor.cls_score and \
                         roi_heads.box_predictor.bbox_pred as in a fresh model; every other \
                         layer comes from the weights",
                        self.detector.num_classes
                    );
                }
                Ok(tensors)
            }
        }
    }

    /// After the model is built: every weight the file should provide came from it, and every
    /// key of the file was used (a different key layout is refused, listing the keys).
    pub fn check_start(&self, params: &Params) -> anyhow::Result<()> {
        let needed: Vec<String> = match &self.source {
            Source::None => return Ok(()),
            Source::Backbone(_) => params
                .initialised_keys()
                .into_iter()
                .filter(|k| k.starts_with("backbone.body."))
                .collect(),
            Source::Detector(_) => params
                .initialised_keys()
                .into_iter()
                .filter(|k| !PREDICTOR_KEYS.contains(&k.as_str()))
                .collect(),
        };
        let unused = params.unused_keys();
        if needed.is_empty() && unused.is_empty() {
            return Ok(());
        }
        bail!(
            "the weights' keys differ from the {} model's:\n  missing from the file: {}\n  \
             in the file but not in the model: {}\nhint: check --backbone, or that the file \
             has torchvision's parameter names",
            self.detector.backbone_name,
            listed(&needed),
            listed(&unused)
        )
    }
}

/// Up to 12 names, then a count.
fn listed(keys: &[String]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    let mut shown: Vec<&str> = keys.iter().take(12).map(String::as_str).collect();
    let more = format!("... ({} in all)", keys.len());
    if keys.len() > 12 {
        shown.push(&more);
    }
    shown.join(", ")
}
