//! Multi-scale RoIAlign over FPN levels (torchvision's `MultiScaleRoIAlign`).
//!
//! Each box is pooled from one level chosen by Eq. 1 of the FPN paper (Lin et al. 2017):
//! `k = floor(k0 + log2(sqrt(w * h) / 224) + 1e-6)` with `k0 = 4`, clamped to the levels
//! present; a 224x224 box goes to P4, a 112x112 one to P3. The scale of each level is
//! inferred as torchvision does: `2^round(log2(feature_height / max_image_height))`, with
//! `max_image_height` the tallest image of the batch (features are padded, images not). Boxes
//! whose level is undefined (negative area: NaN) pool nothing and stay zero, as in
//! torchvision. The level arithmetic is f32, as torchvision computes it.
//!
//! Level assignment runs on the host (one read of the boxes). On the CPU the pooling reads
//! every level in place and writes each RoI's row directly (`stage.rs`, with the RoIAlign CPU
//! kernel); on CUDA it is [`roi_align`](super::roi_align) per level, then one reordering
//! `index_select` (`per_level.rs`).

mod per_level;
mod stage;

use candle_core::{DType, Device, Result, Tensor};

use super::error::{check_dtype, check_same_device, check_shape, OpsError};
use super::roi_align::Params;

const OP: &str = "MultiScaleRoiAlign";
/// FPN paper's canonical ImageNet box size and the level it maps to (Eq. 1).
const CANONICAL_SCALE: f32 = 224.0;
const CANONICAL_LEVEL: f32 = 4.0;
/// torchvision's `LevelMapper` epsilon, added before the floor.
const LEVEL_EPS: f32 = 1e-6;

/// Pools boxes from the FPN level that matches their size (aligned = false, as torchvision).
#[derive(Clone, Debug)]
pub struct MultiScaleRoiAlign {
    /// `(height, width)` of the pooled grid (torchvision: `output_size`, 7x7 in Faster R-CNN).
    output_size: (usize, usize),
    /// Samples per bin side; `<= 0` is adaptive (torchvision: `sampling_ratio`, 2).
    sampling_ratio: i64,
}

impl MultiScaleRoiAlign {
    pub fn new(output_size: (usize, usize), sampling_ratio: i64) -> Self {
        Self {
            output_size,
            sampling_ratio,
        }
    }

    /// Pools every box of every image, in input order (image 0's boxes first).
    ///
    /// # Shapes
    /// `features`: L levels `[B, C, H_l, W_l]` (P2..P5); `boxes`: per image `[K_i, 4]` xyxy in
    /// resized-image pixels; `image_sizes`: per image `(h, w)` → `[sum K_i, C, oh, ow]`
    pub fn forward(
        &self,
        features: &[Tensor],
        boxes: &[Tensor],
        image_sizes: &[(usize, usize)],
    ) -> Result<Tensor> {
        let (_, channels) = self.validate(features, boxes, image_sizes)?;
        let max_h = image_sizes.iter().map(|s| s.0).max().unwrap_or(1).max(1);
        let scales: Vec<f64> = features
            .iter()
            .map(|f| infer_scale(f.dim(2).unwrap_or(0), max_h))
            .collect();
        let k_min = -(scales[0] as f32).log2() as i64;
        let k_max = -(scales[scales.len() - 1] as f32).log2() as i64;

        // Host copy of the boxes: RoI rows (image, x1, y1, x2, y2) and the level of each.
        let mut rois: Vec<[f32; 5]> = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            for r in b.to_vec2::<f32>()? {
                rois.push([i as f32, r[0], r[1], r[2], r[3]]);
            }
        }
        let levels: Vec<Option<usize>> = if features.len() == 1 {
            vec![Some(0); rois.len()] // one level: every RoI, as torchvision
        } else {
            rois.iter()
                .map(|r| map_level(r, k_min, k_max).filter(|&l| l < features.len()))
                .collect()
        };
        match features[0].device() {
            Device::Cpu => {
                let params: Vec<Params> = scales.iter().map(|&s| self.params(s)).collect();
                stage::pool(features, &params, &rois, &levels)
            }
            _ => per_level::pool(features, &scales, self, &rois, &levels, channels),
        }
    }

    /// The RoIAlign parameters of a level of scale `scale` (aligned = false, as torchvision).
    fn params(&self, scale: f64) -> Params {
        Params {
            pooled_h: self.output_size.0,
            pooled_w: self.output_size.1,
            spatial_scale: scale as f32,
            sampling_ratio: self.sampling_ratio,
            aligned: false,
        }
    }

    fn validate(
        &self,
        features: &[Tensor],
        boxes: &[Tensor],
        image_sizes: &[(usize, usize)],
    ) -> Result<(usize, usize)> {
        let invalid = |arg: &'static str, message: String| -> candle_core::Error {
            OpsError::Invalid {
                op: OP,
                arg,
                message,
            }
            .into()
        };
        let Some(first) = features.first() else {
            return Err(invalid(
                "features",
                "must hold at least one level, got none".into(),
            ));
        };
        check_shape(OP, "features", first, &[None, None, None, None])?;
        let (batch, channels, _, _) = first.dims4()?;
        let mut all: Vec<(&'static str, &Tensor)> =
            features.iter().map(|f| ("features", f)).collect();
        all.extend(boxes.iter().map(|b| ("boxes", b)));
        check_same_device(OP, &all)?;
        for f in features {
            check_shape(
                OP,
                "features",
                f,
                &[Some(batch), Some(channels), None, None],
            )?;
            check_dtype(OP, "features", f, &[DType::F32], "f32")?;
        }
        for b in boxes {
            check_shape(OP, "boxes", b, &[None, Some(4)])?;
            check_dtype(OP, "boxes", b, &[DType::F32], "f32")?;
        }
        if image_sizes.len() != boxes.len() {
            return Err(invalid(
                "image_sizes",
                format!(
                    "must have one (h, w) per image of `boxes` ({}), got {}",
                    boxes.len(),
                    image_sizes.len()
                ),
            ));
        }
        if boxes.len() > batch {
            return Err(invalid(
                "boxes",
                format!(
                    "has {} images but the features have a batch of {batch}",
                    boxes.len()
                ),
            ));
        }
        if image_sizes.iter().any(|&(h, w)| h == 0 || w == 0) {
            return Err(invalid(
                "image_sizes",
                format!("must all be non-empty, got {image_sizes:?}"),
            ));
        }
        Ok((batch, channels))
    }
}

/// torchvision's `_infer_scale`: the power of two nearest (in log2, computed in f32) to
/// `feature_height / image_height`.
fn infer_scale(feature_height: usize, image_height: usize) -> f64 {
    let approx = feature_height as f64 / image_height as f64;
    let k = (approx as f32).log2().round_ties_even();
    2f64.powf(k as f64)
}

/// FPN Eq. 1 for one RoI row; `None` when the level is undefined (NaN from a negative area).
fn map_level(roi: &[f32; 5], k_min: i64, k_max: i64) -> Option<usize> {
    let area = (roi[3] - roi[1]) * (roi[4] - roi[2]);
    let s = area.sqrt();
    let k = (CANONICAL_LEVEL + (s / CANONICAL_SCALE).log2() + LEVEL_EPS).floor();
    if k.is_nan() {
        return None;
    }
    let k = k.clamp(k_min as f32, k_max as f32) as i64;
    Some((k - k_min) as usize)
}

#[cfg(test)]
mod tests;
