//! Loading a whole detector for inference (`detect predict`, `detect eval --weights`).
//!
//! Two kinds of weights files:
//! - a model written by `detect train` (`model_final.safetensors`): its metadata carries the
//!   resolved config (`{"detector": DetectorConfig, "categories": CategoryMap, ...}`), so the
//!   architecture and the label → category map come from the file itself;
//! - torchvision-layout detector weights (`.pth` or `.safetensors`, state-dict names
//!   `backbone.body.*`, `backbone.fpn.*`, `rpn.head.*`, `roi_heads.box_head.fc6/fc7`,
//!   `roi_heads.box_predictor.*`, old or new spellings): the architecture needs `--backbone
//!   NAME`; the number of classes is read from `roi_heads.box_predictor.cls_score.weight`
//!   (`[num_classes, representation]`). With 91 outputs the weights are taken as torchvision's
//!   COCO detectors: labels are COCO category ids (with COCO names) and FrozenBatchNorm uses
//!   eps 0.0, as torchvision's `fasterrcnn_*_fpn(weights=...)` sets with `overwrite_eps`. Any
//!   other class count needs `--categories FILE` ([`crate::weights::categories`]);
//! - a registry name (`torchvision:fasterrcnn_resnet50_fpn`): torchvision layout, with the
//!   architecture, eps and classes the registry gives.
//!
//! Either way every tensor goes through [`CheckedWeights`]: a missing key or a wrong shape is an
//! error naming the key and both shapes, and keys the model never asked for are an error that
//! lists them (they usually mean a different architecture, e.g. Mask R-CNN weights).
use std::path::Path;

use anyhow::{bail, Context};
use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};

use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::FasterRcnn;
use crate::train::checkpoint::read_model_meta;
use crate::weights::categories::{labels_for, read_categories};
use crate::weights::registry::RegistryEntry;
use crate::weights::resolve::ResolvedWeights;
use datasets::coco::{Category, CategoryMap, COCO_TORCHVISION_NUM_CLASSES};

/// The predictor weight whose first dimension is the number of classes (background included).
pub const CLS_SCORE_WEIGHT: &str = "roi_heads.box_predictor.cls_score.weight";

/// How many unused keys an error lists before summarising the rest.
const LISTED_KEYS: usize = 12;

/// A detector ready for inference and what its labels mean.
pub struct LoadedDetector {
    pub model: FasterRcnn,
    /// Model label → (category id, name).
    pub labels: CategoryMap,
    /// Where the architecture came from, for messages.
    pub source: WeightsSource,
}

/// The two kinds of weights files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsSource {
    /// A model written by `detect train` (config and categories in its metadata).
    TrainedModel,
    /// torchvision-layout weights, architecture from `--backbone`.
    Torchvision,
}

/// Loads `weights` (see the module docs). `backbone` is required for torchvision-layout
/// weights given as a file and, for a `detect train` model or a registry name, must agree with
/// the architecture they carry. `categories` (`--categories FILE`) says what the labels of
/// torchvision-layout weights mean; it is required unless the weights have 91 outputs (COCO)
/// or come from the registry.
pub fn load_detector(
    weights: &ResolvedWeights,
    backbone: Option<&str>,
    categories: Option<&Path>,
    device: &Device,
) -> anyhow::Result<LoadedDetector> {
    let given = categories.map(read_categories).transpose()?;
    let path = weights.path.as_path();
    if let Some((name, entry)) = &weights.registry {
        if let Some(b) = backbone.filter(|b| *b != entry.architecture) {
            bail!(
                "--backbone {b} disagrees with `{name}`, a {} detector
hint: leave --backbone                  out; the registry knows the architecture",
                entry.architecture
            );
        }
        let origin = Origin {
            bn_eps: Some(entry.frozen_bn_eps),
            categories: given,
            known: entry.categories.clone(),
        };
        return load_torchvision_weights_from(path, device, |n| entry_config(entry, n), origin);
    }
    if let Some(meta) = trained_model_meta(path)? {
        if categories.is_some() {
            bail!(
                "`{}` was written by `detect train` and carries its categories
hint: leave                  --categories out",
                path.display()
            );
        }
        return load_trained_model(path, &meta.config, &meta.class_names, backbone, device);
    }
    let Some(name) = backbone else {
        bail!(
            "`{}` holds torchvision-layout weights without an architecture; pass --backbone NAME\n\
             hint: e.g. --backbone resnet50 for torchvision's fasterrcnn_resnet50_fpn, \
             --backbone resnext101_32x4d",
            path.display()
        );
    };
    let origin = Origin {
        bn_eps: None,
        categories: given,
        known: None,
    };
    load_torchvision_weights_from(
        path,
        device,
        |num_classes| DetectorConfig::from_backbone_name(name, num_classes),
        origin,
    )
}

/// The detector config of a registry entry with `num_classes` outputs.
pub fn entry_config(entry: &RegistryEntry, num_classes: usize) -> anyhow::Result<DetectorConfig> {
    let mut config = match &entry.detector {
        Some(c) => c.clone(),
        None => DetectorConfig::from_backbone_name(&entry.architecture, num_classes)?,
    };
    config.num_classes = num_classes;
    config.backbone.body.bn_eps = entry.frozen_bn_eps;
    Ok(config)
}

/// What is known about torchvision-layout weights besides their tensors.
#[derive(Debug, Default)]
pub struct Origin {
    /// FrozenBatchNorm's eps when known (registry); else 0.0 for 91 outputs (torchvision's
    /// COCO files), the config's otherwise.
    pub bn_eps: Option<f64>,
    /// `--categories FILE`.
    pub categories: Option<Vec<Category>>,
    /// The registry's label map.
    pub known: Option<CategoryMap>,
}

/// torchvision-layout weights with the config `base_config(num_classes)` (`num_classes` read
/// from the predictor); with 91 outputs FrozenBatchNorm's eps becomes 0.0 and labels are COCO
/// category ids; any other class count needs its categories (an error otherwise).
pub fn load_torchvision_weights(
    weights: &Path,
    device: &Device,
    base_config: impl FnOnce(usize) -> anyhow::Result<DetectorConfig>,
) -> anyhow::Result<LoadedDetector> {
    load_torchvision_weights_from(weights, device, base_config, Origin::default())
}

/// [`load_torchvision_weights`] with what else is known about the file.
pub fn load_torchvision_weights_from(
    weights: &Path,
    device: &Device,
    base_config: impl FnOnce(usize) -> anyhow::Result<DetectorConfig>,
    origin: Origin,
) -> anyhow::Result<LoadedDetector> {
    let map = read_weight_map(weights, device)?;
    let num_classes = num_classes_of(&map, weights)?;
    let labels = labels_for(
        num_classes,
        origin.categories.as_deref(),
        origin.known.as_ref(),
        weights,
    )?;
    let mut config = base_config(num_classes)?;
    config.num_classes = num_classes;
    match origin.bn_eps {
        Some(eps) => config.backbone.body.bn_eps = eps,
        None if num_classes == COCO_TORCHVISION_NUM_CLASSES => config.backbone.body.bn_eps = 0.0,
        None => {}
    }
    let hint = "check that --backbone names the architecture these weights were trained with";
    Ok(LoadedDetector {
        model: build_checked(&config, map, weights, device, hint)?,
        labels,
        source: WeightsSource::Torchvision,
    })
}

/// A `detect train` model: config and categories from the file's metadata.
fn load_trained_model(
    weights: &Path,
    config: &serde_json::Value,
    class_names: &[String],
    backbone: Option<&str>,
    device: &Device,
) -> anyhow::Result<LoadedDetector> {
    let detector = config.get("detector").with_context(|| {
        format!(
            "`{}`: its config has no `detector` entry",
            weights.display()
        )
    })?;
    let detector: DetectorConfig = serde_json::from_value(detector.clone())
        .with_context(|| format!("`{}`: reading the detector config", weights.display()))?;
    if let Some(name) = backbone {
        if name != detector.backbone_name {
            bail!(
                "--backbone {name} disagrees with `{}`, a {} model written by `detect train`\n\
                 hint: leave --backbone out; the model file carries its architecture",
                weights.display(),
                detector.backbone_name
            );
        }
    }
    let labels = match config.get("categories") {
        Some(categories) => serde_json::from_value::<CategoryMap>(categories.clone())
            .with_context(|| format!("`{}`: reading its categories", weights.display()))?,
        None => CategoryMap::from_class_names(class_names),
    };
    let map = read_weight_map(weights, device)?;
    Ok(LoadedDetector {
        model: build_checked(
            &detector,
            map,
            weights,
            device,
            "check that the file was written by `detect train`",
        )?,
        labels,
        source: WeightsSource::TrainedModel,
    })
}

/// The metadata of a `detect train` model file, `None` for any other file.
pub fn trained_model_meta(
    weights: &Path,
) -> anyhow::Result<Option<crate::train::checkpoint::ModelMeta>> {
    if !is_safetensors(weights) {
        return Ok(None);
    }
    read_model_meta(weights).with_context(|| format!("reading `{}`", weights.display()))
}

fn is_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

/// Every tensor of a `.safetensors` or zip-format `.pth` file, renamed to a detector's
/// state-dict names (old FPN spellings updated, `num_batches_tracked` dropped).
pub fn read_weight_map(path: &Path, device: &Device) -> anyhow::Result<WeightMap> {
    let map = if is_safetensors(path) {
        WeightMap::load(path, device).with_context(|| format!("reading `{}`", path.display()))?
    } else {
        let state = crate::weights::pth::read_pth(path)?;
        for (name, reason) in &state.skipped {
            if !name.ends_with("num_batches_tracked") {
                eprintln!("warning: `{}`: skipped `{name}`: {reason}", path.display());
            }
        }
        WeightMap::new(state.tensors.into_iter().collect())
    };
    Ok(map.to_detector_names())
}

/// `num_classes` (background included) from the box predictor's class-score weight.
pub fn num_classes_of(map: &WeightMap, path: &Path) -> anyhow::Result<usize> {
    let Some(weight) = map.tensors().get(CLS_SCORE_WEIGHT) else {
        bail!(
            "`{}` has no `{CLS_SCORE_WEIGHT}`: not a whole Faster R-CNN detector\n\
             hint: ImageNet backbone weights start a training run: \
             `detect train --backbone-weights FILE`",
            path.display()
        );
    };
    match weight.dims() {
        &[num_classes, _] if num_classes >= 2 => Ok(num_classes),
        dims => bail!(
            "`{}`: `{CLS_SCORE_WEIGHT}` has shape {dims:?}, expected [num_classes >= 2, \
             representation]",
            path.display()
        ),
    }
}

/// Builds the model from `map`, every key checked (shape and use); `hint` ends a mismatch
/// error.
fn build_checked(
    config: &DetectorConfig,
    map: WeightMap,
    path: &Path,
    device: &Device,
    hint: &str,
) -> anyhow::Result<FasterRcnn> {
    let checked = CheckedWeights::new(map, &[]);
    let model = FasterRcnn::new(config, checked.var_builder(DType::F32, device)).map_err(|e| {
        anyhow::anyhow!(
            "the weights in `{}` do not fit a {} Faster R-CNN with {} classes: {}\nhint: {hint}",
            path.display(),
            config.backbone_name,
            config.num_classes,
            crate::weights::pth::without_backtrace(e)
        )
    })?;
    let unused = checked.unused_keys();
    if !unused.is_empty() {
        let mut listed: Vec<&str> = unused
            .iter()
            .take(LISTED_KEYS)
            .map(String::as_str)
            .collect();
        if unused.len() > LISTED_KEYS {
            listed.push("...");
        }
        bail!(
            "`{}` has {} tensors a {} Faster R-CNN does not use: {}\n\
             hint: {hint}, and that the file is a Faster R-CNN (not Mask/Keypoint R-CNN)",
            path.display(),
            unused.len(),
            config.backbone_name,
            listed.join(", ")
        );
    }
    Ok(model)
}

#[cfg(test)]
mod tests;
