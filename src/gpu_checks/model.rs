//! The whole detector on CUDA against the CPU, on the fixtures of `tests/model_parity.rs` and
//! `tests/train_step_parity.rs` (torchvision's reduced ResNeXt-FPN Faster R-CNN, two PNG
//! crops of COCO images):
//! - detections: same count, labels and order; boxes within 1e-2 px, scores within 1e-4;
//! - one training step with torchvision's sampled anchors and proposals (the train-step
//!   fixture): each loss within 1e-3 relative, each trained parameter's gradient within
//!   `max|Δ| / max|ref| <= 1e-3`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use backbones::{BackboneConfig, BlockForm, ResNextConfig};
use candle_core::{DType, Device, Result, Tensor};
use datasets::transforms::{batch_images, transform_image, TransformConfig};
use heads::roi_heads::{RoiHeadsConfig, Target};
use heads::rpn::RpnConfig;
use heads::sampler::SampledIndices;

use super::compare::{host, max_abs_diff, max_rel_diff, Check};
use crate::model::config::DetectorConfig;

const BOX_LIMIT: f64 = 1e-2;
const SCORE_LIMIT: f64 = 1e-4;
const LOSS_LIMIT: f64 = 1e-3;
const GRAD_LIMIT: f64 = 1e-3;

fn msg(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// The fixtures' reduced architecture (tests/fixtures/model/gen.py), FrozenBN eps 0.
fn tiny_config(trainable_layers: usize, min_size: usize, max_size: usize) -> DetectorConfig {
    DetectorConfig {
        backbone_name: "tiny (tests/fixtures/model/gen.py)".into(),
        backbone: BackboneConfig {
            body: ResNextConfig {
                layers: [1, 1, 2, 1],
                groups: 4,
                width_per_group: 16,
                stem_channels: 8,
                planes: [8, 16, 32, 64],
                block_form: BlockForm::Grouped,
                bn_eps: 0.0,
            },
            fpn_channels: 16,
            trainable_layers,
        },
        rpn: RpnConfig::default(),
        roi_heads: RoiHeadsConfig {
            representation_size: 64,
            ..RoiHeadsConfig::default()
        },
        transform: TransformConfig {
            min_size: vec![min_size],
            max_size,
            ..TransformConfig::default()
        },
        num_classes: 91,
    }
}

fn json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| msg(format!("{}: {e}", path.display())))
}

/// The fixture images (as named in `meta["images"]`) transformed with their boxes: the CPU
/// batch, resized and original sizes, and the boxes in resized pixels.
type Batch = (
    Tensor,
    Vec<(usize, usize)>,
    Vec<(usize, usize)>,
    Vec<Vec<[f32; 4]>>,
);
fn batch(
    dir: &Path,
    meta: &serde_json::Value,
    config: &TransformConfig,
    boxes: &[Vec<[f32; 4]>],
) -> Result<Batch> {
    let names = meta["images"]
        .as_array()
        .ok_or_else(|| msg("fixture: no images"))?;
    let mut transformed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path: PathBuf = dir.join(name.as_str().unwrap_or_default());
        let image = datasets::image::load_rgb(&path).map_err(msg)?;
        let b = boxes.get(i).cloned().unwrap_or_default();
        transformed.push(transform_image(
            config,
            &image,
            &b,
            config.min_size[0],
            false,
        ));
    }
    let (pixels, (h, w)) = batch_images(&transformed, config.size_divisible);
    let images = Tensor::from_vec(pixels, (transformed.len(), 3, h, w), &Device::Cpu)?;
    Ok((
        images,
        transformed.iter().map(|t| t.size).collect(),
        transformed.iter().map(|t| t.original_size).collect(),
        transformed.iter().map(|t| t.boxes.clone()).collect(),
    ))
}

/// Detections of the model fixture's weights on both devices.
pub fn detections(root: &Path, cuda: &Device) -> Vec<Check> {
    let dir = root.join("tests/fixtures/model");
    let run = |dev: &Device| -> Result<Vec<[Tensor; 3]>> {
        let meta = json(&dir.join("outputs.json"))?;
        let loaded = crate::weights::load::load_torchvision_weights(
            &dir.join("weights.safetensors"),
            dev,
            |_| Ok(tiny_config(3, 160, 256)),
        )
        .map_err(msg)?;
        let config = loaded.model.config().transform.clone();
        let (images, sizes, originals, _) = batch(&dir, &meta, &config, &[])?;
        let dets = loaded
            .model
            .detect(&images.to_device(dev)?, &sizes, &originals)?;
        Ok(dets
            .into_iter()
            .map(|d| [d.boxes, d.scores, d.labels])
            .collect())
    };
    let (a, b) = match run(&Device::Cpu).and_then(|a| Ok((a, run(cuda)?))) {
        Ok(v) => v,
        Err(e) => return vec![Check::failed("whole model detections", &e)],
    };
    let mut out = Vec::new();
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let name = format!("whole model image {i}");
        let labels = (host(&a[2]), host(&b[2]));
        let (la, lb) = match labels {
            (Ok(la), Ok(lb)) => (la, lb),
            (Err(e), _) | (_, Err(e)) => {
                out.push(Check::failed(name, &e));
                continue;
            }
        };
        let same = la == lb;
        out.push(Check::exact(
            format!("{name} count+labels+order"),
            same,
            format!(
                "{} vs {} detections (CUDA vs CPU){}",
                lb.len(),
                la.len(),
                if same {
                    ", same labels"
                } else {
                    ", labels differ"
                }
            ),
        ));
        if !same {
            continue;
        }
        for (what, k, limit) in [("boxes (px)", 0, BOX_LIMIT), ("scores", 1, SCORE_LIMIT)] {
            out.push(match max_abs_diff(&b[k], &a[k]) {
                Ok(e) => Check::within(format!("{name} {what}"), "max|Δ|", e, limit),
                Err(e) => Check::failed(format!("{name} {what}"), &e),
            });
        }
    }
    out
}

/// torchvision's sampled indices of stage `stage` ("rpn" or "roi") for the two images.
fn samples(step: &HashMap<String, Tensor>, stage: &str) -> Result<Vec<SampledIndices>> {
    let idx = |name: String| -> Result<Vec<u32>> {
        let t = step
            .get(&name)
            .ok_or_else(|| msg(format!("fixture has no {name}")))?;
        Ok(t.to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .map(|v| v as u32)
            .collect())
    };
    (0..2)
        .map(|i| {
            Ok(SampledIndices {
                positive: idx(format!("{stage}_samples.{i}.positive"))?,
                negative: idx(format!("{stage}_samples.{i}.negative"))?,
            })
        })
        .collect()
}

/// torchvision's RoI samples moved onto our proposals + ground truth (`ours[i]`), by box
/// (within 1e-2 px per coordinate): tied scores may order proposals differently.
fn map_roi(step: &HashMap<String, Tensor>, ours: &[Tensor]) -> Result<Vec<SampledIndices>> {
    let mut out = Vec::new();
    for (i, s) in samples(step, "roi")?.into_iter().enumerate() {
        let get = |n: String| {
            step.get(&n)
                .cloned()
                .ok_or_else(|| msg(format!("fixture has no {n}")))
        };
        let torch = Tensor::cat(
            &[
                get(format!("proposals.{i}"))?,
                get(format!("targets.{i}.boxes"))?,
            ],
            0,
        )?
        .to_vec2::<f32>()?;
        let ours = ours[i].to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-2);
        let map = |j: &u32| -> Result<u32> {
            let want = torch
                .get(*j as usize)
                .ok_or_else(|| msg("sample index out of range"))?;
            if ours.get(*j as usize).is_some_and(|o| same(o, want)) {
                return Ok(*j);
            }
            let partners: Vec<usize> = (0..ours.len()).filter(|&k| same(&ours[k], want)).collect();
            match partners[..] {
                [k] => Ok(k as u32),
                _ => Err(msg(format!(
                    "image {i}: torch's proposal {j} has {} partners",
                    partners.len()
                ))),
            }
        };
        out.push(SampledIndices {
            positive: s.positive.iter().map(map).collect::<Result<_>>()?,
            negative: s.negative.iter().map(map).collect::<Result<_>>()?,
        });
    }
    Ok(out)
}

/// The four losses and every trained parameter's gradient on `dev`.
type StepOut = (Vec<(&'static str, f64)>, Vec<(String, Tensor)>);
fn train_step(root: &Path, dev: &Device) -> Result<StepOut> {
    let (model_dir, step_dir) = (
        root.join("tests/fixtures/model"),
        root.join("tests/fixtures/train_step"),
    );
    let meta = json(&step_dir.join("step.json"))?;
    let step = candle_core::safetensors::load(step_dir.join("step.safetensors"), &Device::Cpu)?;
    let n = |k: &str| {
        meta[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| msg(format!("step.json: no {k}")))
    };
    let config = tiny_config(n("trainable_layers")?, n("min_size")?, n("max_size")?);
    let weights =
        candle_core::safetensors::load(model_dir.join("weights.safetensors"), &Device::Cpu)?;
    let (model, params) = crate::train::step::build_model(&config, weights, 0, dev).map_err(msg)?;
    let crops = meta["crop_targets"]
        .as_array()
        .ok_or_else(|| msg("step.json: no crop_targets"))?;
    let boxes: Vec<Vec<[f32; 4]>> = crops
        .iter()
        .map(|c| {
            c["boxes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| std::array::from_fn(|k| b[k].as_f64().unwrap_or(0.0) as f32))
                .collect()
        })
        .collect();
    let (images, sizes, _, resized_boxes) = batch(&model_dir, &meta, &config.transform, &boxes)?;
    let targets = crops
        .iter()
        .zip(&resized_boxes)
        .map(|(c, b)| {
            let labels: Vec<i64> = c["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_i64().unwrap_or(0))
                .collect();
            let flat: Vec<f32> = b.iter().flatten().copied().collect();
            Ok(Target {
                boxes: Tensor::from_vec(flat, (b.len(), 4), dev)?,
                labels: Tensor::new(labels.as_slice(), dev)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let losses = model.losses_with_samples(
        &images.to_device(dev)?,
        &sizes,
        &targets,
        &samples(&step, "rpn")?,
        |ours| map_roi(&step, ours),
    )?;
    let values = losses.values()?;
    let grads = losses.total()?.backward()?;
    let mut out = Vec::new();
    for (name, var) in params.trainable() {
        let g = grads
            .get(var.as_tensor())
            .cloned()
            .ok_or_else(|| msg(format!("no gradient for {name}")))?;
        out.push((name, g));
    }
    Ok((values, out))
}

/// One training step on both devices: the four losses and every trained parameter's gradient.
pub fn training_step(root: &Path, cuda: &Device) -> Vec<Check> {
    let (a, b) = match train_step(root, &Device::Cpu).and_then(|a| Ok((a, train_step(root, cuda)?)))
    {
        Ok(v) => v,
        Err(e) => return vec![Check::failed("training step", &e)],
    };
    let mut out = Vec::new();
    for ((name, ref_loss), (_, loss)) in a.0.iter().zip(&b.0) {
        let rel = (loss - ref_loss).abs() / ref_loss.abs().max(f64::MIN_POSITIVE);
        out.push(Check::within(
            format!("training step loss {name}"),
            "relative",
            rel,
            LOSS_LIMIT,
        ));
    }
    // One row for all gradients: the worst tensor (a row per tensor would be ~60 rows).
    let mut worst = (0.0f64, String::new());
    let gpu: HashMap<&String, &Tensor> = b.1.iter().map(|(n, t)| (n, t)).collect();
    for (name, g) in &a.1 {
        let e = match gpu.get(name).map(|t| max_rel_diff(t, g)) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                return [out, vec![Check::failed(format!("gradient {name}"), &e)]].concat()
            }
            None => f64::INFINITY,
        };
        if e.is_nan() || e > worst.0 {
            worst = (e, name.clone());
        }
    }
    let mut c = Check::within(
        format!("training step gradients ({} tensors)", a.1.len()),
        "worst max|Δ|/max|ref|",
        worst.0,
        GRAD_LIMIT,
    );
    c.measured = format!("{} ({})", c.measured, worst.1);
    out.push(c);
    out
}
