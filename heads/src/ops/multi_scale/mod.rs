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
//! Nothing is read to the host. On the CPU the op's kernel reads the RoIs in place, assigns
//! their levels and pools every level in place into each RoI's row (`stage.rs`, with the
//! RoIAlign CPU kernel). On CUDA the levels are computed with tensor ops ([`levels_tensor`]),
//! the RoIs of each level picked with [`nonzero`](super::nonzero) (one count per level), pooled
//! with [`roi_align`](super::roi_align), and put back in input order by one `index_select`
//! (`per_level.rs`).

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

        let rois = roi_rows(boxes, features[0].device())?; // [K, 5]
        match features[0].device() {
            Device::Cpu => {
                // The CPU kernel reads the RoIs where they are (CPU memory), no copy to make.
                let rows = cpu_rows(&rois)?;
                let levels: Vec<Option<usize>> = if features.len() == 1 {
                    vec![Some(0); rows.len()] // one level: every RoI, as torchvision
                } else {
                    rows.iter()
                        .map(|r| map_level(r, k_min, k_max).filter(|&l| l < features.len()))
                        .collect()
                };
                let params: Vec<Params> = scales.iter().map(|&s| self.params(s)).collect();
                stage::pool(features, &params, &rows, &levels)
            }
            _ => {
                let levels = levels_tensor(&rois, k_min, k_max, features.len())?;
                per_level::pool(features, &scales, self, &rois, &levels, channels)
            }
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

/// RoI rows `(image, x1, y1, x2, y2)` of every image's boxes, image 0's first.
///
/// # Shapes
/// `boxes[i]`: `[K_i, 4]` → `[sum K_i, 5]`
fn roi_rows(boxes: &[Tensor], device: &Device) -> Result<Tensor> {
    let mut rows = Vec::with_capacity(boxes.len());
    for (i, b) in boxes.iter().enumerate() {
        let k = b.dim(0)?;
        if k > 0 {
            let image = Tensor::full(i as f32, (k, 1), device)?;
            rows.push(Tensor::cat(&[&image, b], 1)?); // [K_i, 5]
        }
    }
    if rows.is_empty() {
        return Tensor::zeros((0, 5), DType::F32, device);
    }
    Tensor::cat(&rows, 0)
}

/// The RoI rows of a CPU tensor, read in place by the CPU kernel.
fn cpu_rows(rois: &Tensor) -> Result<Vec<[f32; 5]>> {
    let rois = rois.contiguous()?;
    let (storage, layout) = rois.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("{OP}: expected RoIs in CPU memory");
    };
    Ok(crate::ops::cpu_slice::<f32>(OP, cpu, layout)?
        .chunks_exact(5)
        .map(|r| [r[0], r[1], r[2], r[3], r[4]])
        .collect())
}

/// Marks a RoI without a level in [`levels_tensor`].
const NO_LEVEL: i64 = -1;

/// [`map_level`] for every RoI row with tensor ops, on the RoIs' device: the level index
/// (`0..num_levels`), or [`NO_LEVEL`]. `log2` is `ln / ln 2` here (candle has no `log2`); it
/// can differ from `f32::log2` by an ulp, which the `1e-6` epsilon absorbs except within
/// ~1e-7 of a level boundary.
///
/// # Shapes
/// `rois [K, 5]` → I64 `[K]`
fn levels_tensor(rois: &Tensor, k_min: i64, k_max: i64, num_levels: usize) -> Result<Tensor> {
    let k = rois.dim(0)?;
    let device = rois.device();
    if num_levels == 1 || k == 0 {
        return Tensor::zeros(k, DType::I64, device);
    }
    let col = |i: usize| rois.narrow(1, i, 1);
    let area = ((col(3)? - col(1)?)? * (col(4)? - col(2)?)?)?.squeeze(1)?; // [K]
    let s = area.sqrt()?;
    let scalar = |v: f32| Tensor::full(v, (), device);
    let log2 = s
        .broadcast_div(&scalar(CANONICAL_SCALE)?)?
        .log()?
        .broadcast_div(&scalar(std::f32::consts::LN_2)?)?;
    let level = ((log2 + CANONICAL_LEVEL as f64)? + LEVEL_EPS as f64)?.floor()?; // [K]
    let undefined = level.ne(&level)?; // NaN
    let lo = Tensor::full(k_min as f32, k, device)?;
    let hi = Tensor::full(k_max as f32, k, device)?;
    let index = (level.maximum(&lo)?.minimum(&hi)? - k_min as f64)?.to_dtype(DType::I64)?;
    let beyond = ops_ge(&index, num_levels as i64)?;
    let none = Tensor::full(NO_LEVEL, k, device)?;
    (undefined + beyond)?.where_cond(
        &none,
        &index.maximum(&Tensor::zeros(k, DType::I64, device)?)?,
    )
}

/// `t >= value` for an I64 tensor, the value made on the device.
fn ops_ge(t: &Tensor, value: i64) -> Result<Tensor> {
    t.ge(&Tensor::full(value, t.shape(), t.device())?)
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
