//! Anchor boxes for every feature-map location of every pyramid level (torchvision's
//! `AnchorGenerator`).
//!
//! Each level `l` has a set of *cell anchors*: boxes centred on the origin, one per
//! (aspect ratio, size) pair, with `h / w = ratio` and `sqrt(w * h) = size`. Their corners are
//! rounded to whole pixels (round half to even, as `torch.round`), which is why torchvision's
//! anchors are not exactly `size` wide. The level's anchors are the cell anchors shifted to
//! every grid position `(x * stride_w, y * stride_h)`, ordered (y, x, anchor) — the same order
//! the RPN head's outputs are flattened in.
//!
//! The stride of a level is `padded_image_size / feature_size` in *integer* division on the
//! padded batch size, so a 96-pixel-high batch with a 2-pixel-high P6 has stride 48, not 64.
//!
//! The anchors of a (padded size, feature sizes, device) are built once and cached: a step
//! at a size seen before uploads nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ops::transfer;
use candle_core::{Device, DeviceLocation, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Anchor sizes and aspect ratios per pyramid level (torchvision's `AnchorGenerator` arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorGeneratorConfig {
    /// Anchor sizes in pixels (sqrt of the area), one list per level (`sizes`).
    pub sizes: Vec<Vec<f32>>,
    /// Height / width ratios, one list per level (`aspect_ratios`).
    pub aspect_ratios: Vec<Vec<f32>>,
}

impl Default for AnchorGeneratorConfig {
    /// torchvision's Faster R-CNN FPN anchors: one size per level P2..P6, three ratios.
    fn default() -> Self {
        Self {
            sizes: vec![vec![32.], vec![64.], vec![128.], vec![256.], vec![512.]],
            aspect_ratios: vec![vec![0.5, 1.0, 2.0]; 5],
        }
    }
}

/// Cache key: padded size, feature sizes, device.
type AnchorKey = ((usize, usize), Vec<(usize, usize)>, DeviceLocation);

/// Distinct batch geometries kept; past it the cache starts over (multi-scale training with
/// many aspect ratios sees hundreds of padded sizes; each entry is one set of anchors).
const CACHED_SIZES: usize = 64;

/// Generates the anchors of a batch from its padded size and its feature-map sizes.
#[derive(Debug, Clone)]
pub struct AnchorGenerator {
    /// Per level: the rounded cell anchors `[x1, y1, x2, y2]`, ratio-major then size.
    cell_anchors: Vec<Vec<[f32; 4]>>,
    /// Anchors already built (shared by clones: they depend only on `cell_anchors`).
    cache: Arc<Mutex<HashMap<AnchorKey, Vec<Tensor>>>>,
}

impl AnchorGenerator {
    pub fn new(config: &AnchorGeneratorConfig) -> Self {
        let cell_anchors = config
            .sizes
            .iter()
            .zip(config.aspect_ratios.iter().cycle())
            .map(|(sizes, ratios)| generate_anchors(sizes, ratios))
            .collect();
        Self {
            cell_anchors,
            cache: Arc::default(),
        }
    }

    /// The rounded cell anchors of each level.
    pub fn cell_anchors(&self) -> &[Vec<[f32; 4]>] {
        &self.cell_anchors
    }

    /// Number of anchors per feature-map location, per level (the RPN head's `A`).
    pub fn num_anchors_per_location(&self) -> Vec<usize> {
        self.cell_anchors.iter().map(Vec::len).collect()
    }

    /// The anchors of every level, shared by all images of the batch.
    ///
    /// `padded_size` is the `(height, width)` of the padded batch tensor, `feature_sizes` the
    /// `(height, width)` of each level's feature map.
    ///
    /// # Shapes
    /// - returns one tensor per level: `[H_l * W_l * A_l, 4]` f32 xyxy, ordered (y, x, anchor).
    pub fn forward(
        &self,
        padded_size: (usize, usize),
        feature_sizes: &[(usize, usize)],
        device: &Device,
    ) -> Result<Vec<Tensor>> {
        let key = (padded_size, feature_sizes.to_vec(), device.location());
        let poisoned = || candle_core::Error::msg("AnchorGenerator: anchor cache poisoned");
        if let Some(hit) = self.cache.lock().map_err(|_| poisoned())?.get(&key) {
            // Same location, same device object (CUDA devices can share a location).
            if hit.iter().all(|t| t.device().same_device(device)) {
                return Ok(hit.clone());
            }
        }
        let anchors = self.build(padded_size, feature_sizes, device)?;
        let mut cache = self.cache.lock().map_err(|_| poisoned())?;
        if cache.len() >= CACHED_SIZES {
            cache.clear();
        }
        cache.insert(key, anchors.clone());
        Ok(anchors)
    }

    /// The anchors of [`AnchorGenerator::forward`], built on the host and uploaded.
    fn build(
        &self,
        padded_size: (usize, usize),
        feature_sizes: &[(usize, usize)],
        device: &Device,
    ) -> Result<Vec<Tensor>> {
        if feature_sizes.len() != self.cell_anchors.len() {
            candle_core::bail!(
                "AnchorGenerator: {} feature maps but anchors configured for {} levels",
                feature_sizes.len(),
                self.cell_anchors.len()
            );
        }
        feature_sizes
            .iter()
            .zip(&self.cell_anchors)
            .map(|(&(fh, fw), cells)| {
                if fh == 0 || fw == 0 {
                    candle_core::bail!("AnchorGenerator: empty feature map {fh}x{fw}");
                }
                let stride = (padded_size.0 / fh, padded_size.1 / fw);
                let anchors = grid_anchors((fh, fw), stride, cells);
                let n = anchors.len() / 4;
                transfer::upload(anchors, (n, 4), device)
            })
            .collect()
    }
}

/// Cell anchors of one level, computed in f32 step by step like torchvision so that the
/// rounding lands on the same side: `h_ratio = sqrt(r)`, `w_ratio = 1 / h_ratio`,
/// `w = w_ratio * size`, corners `round(±w / 2)`.
fn generate_anchors(sizes: &[f32], ratios: &[f32]) -> Vec<[f32; 4]> {
    let mut out = Vec::with_capacity(sizes.len() * ratios.len());
    for &ratio in ratios {
        let h_ratio = ratio.sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &size in sizes {
            let w = w_ratio * size;
            let h = h_ratio * size;
            out.push([
                (-w / 2.0).round_ties_even(),
                (-h / 2.0).round_ties_even(),
                (w / 2.0).round_ties_even(),
                (h / 2.0).round_ties_even(),
            ]);
        }
    }
    out
}

/// Shifts the cell anchors to every grid position; flat `[H * W * A * 4]`.
fn grid_anchors(grid: (usize, usize), stride: (usize, usize), cells: &[[f32; 4]]) -> Vec<f32> {
    let mut out = Vec::with_capacity(grid.0 * grid.1 * cells.len() * 4);
    for y in 0..grid.0 {
        let sy = (y * stride.0) as f32;
        for x in 0..grid.1 {
            let sx = (x * stride.1) as f32;
            for c in cells {
                out.extend_from_slice(&[sx + c[0], sy + c[1], sx + c[2], sy + c[3]]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
