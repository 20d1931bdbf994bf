//! Feature Pyramid Network as torchvision's `FeaturePyramidNetwork` with `LastLevelMaxPool`.
//!
//! For levels C2..C5: `inner_i = conv1x1_i(C_i)`; top-down from C5,
//! `last = inner_i + nearest_upsample(last, size of inner_i)`; `P_i = conv3x3_i(last)`.
//! P6 = `max_pool2d(P5, kernel 1, stride 2)` = every other pixel of P5.
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::{is_cpu_f32, subsample, Conv2d, ConvConfig, ConvInit};

mod upsample;

/// torchvision's FPN: `inner_blocks.{i}.0` (1x1 lateral) and `layer_blocks.{i}.0` (3x3 output)
/// convs with bias, `out_channels` wide (256 in every torchvision detector).
#[derive(Debug, Clone)]
pub struct Fpn {
    inner_blocks: Vec<Conv2d>,
    layer_blocks: Vec<Conv2d>,
}

impl Fpn {
    /// Reads `inner_blocks.{i}.0.{weight,bias}` and `layer_blocks.{i}.0.{weight,bias}` (the new
    /// torchvision spelling; `weights::WeightMap` rewrites the old `inner_blocks.{i}.weight`).
    pub fn new(in_channels: &[usize], out_channels: usize, vb: VarBuilder) -> Result<Self> {
        let init = ConvInit::KaimingUniformA1;
        let mut inner_blocks = Vec::with_capacity(in_channels.len());
        let mut layer_blocks = Vec::with_capacity(in_channels.len());
        for (i, &cin) in in_channels.iter().enumerate() {
            let vb_inner = vb.pp(format!("inner_blocks.{i}.0"));
            let inner_cfg = ConvConfig::new(1, 0, 1);
            inner_blocks.push(Conv2d::load(
                vb_inner,
                (cin, out_channels, 1),
                inner_cfg,
                true,
                init,
            )?);
            let vb_layer = vb.pp(format!("layer_blocks.{i}.0"));
            let layer_cfg = ConvConfig::new(1, 1, 1);
            let shape = (out_channels, out_channels, 3);
            // Its filters prepared now, before any activation (`Conv2d::prepared`).
            layer_blocks.push(Conv2d::load(vb_layer, shape, layer_cfg, true, init)?.prepared()?);
        }
        Ok(Self {
            inner_blocks,
            layer_blocks,
        })
    }

    /// # Shapes
    /// `features: [C2 [N, c2, H2, W2], ..., C5 [N, c5, H5, W5]]` ->
    /// `[P2 [N, F, H2, W2], ..., P5 [N, F, H5, W5], P6 [N, F, ceil(H5 / 2), ceil(W5 / 2)]]`
    pub fn forward(&self, features: &[Tensor]) -> Result<Vec<Tensor>> {
        let levels = self.inner_blocks.len();
        if features.len() != levels {
            candle_core::bail!(
                "Fpn::forward: expected {levels} feature maps, got {}",
                features.len()
            )
        }
        let mut last = self.inner_blocks[levels - 1].forward(&features[levels - 1])?; // [N, F, H5, W5]
        let mut results = vec![self.layer_blocks[levels - 1].forward(&last)?];
        for i in (0..levels - 1).rev() {
            let (_, _, h, w) = features[i].dims4()?;
            let top_down = upsample_nearest(&last, h, w)?; // [N, F, Hi, Wi]
                                                           // The lateral 1x1 conv with the top-down add fused into it.
            last = self.inner_blocks[i].forward_with(&features[i], Some(&top_down), false)?;
            results.push(self.layer_blocks[i].forward(&last)?);
        }
        results.reverse();
        let p6 = subsample(&results[levels - 1], 2)?; // LastLevelMaxPool
        results.push(p6);
        Ok(results)
    }
}

/// Nearest-neighbour resize to `(h, w)` with PyTorch's index rule
/// (`src = min(floor(dst * (in / out)), in - 1)` with the scale in f32; exact copies for
/// out = in and out = 2 * in). Exact 2x has its own kernels; other ratios are two
/// `index_select`s, so that the backward works for any ratio.
///
/// # Shapes
/// `x: [N, C, Hin, Win]` -> `[N, C, h, w]`
pub fn upsample_nearest(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, hin, win) = x.dims4()?;
    if h == 2 * hin && w == 2 * win {
        // Exact 2x (every batch padded to a multiple of 32) picks pixel `dst / 2`. On CPU one
        // node with a 2x2-sum backward; elsewhere candle's kernel when no gradient is needed,
        // else the two `index_select`s below.
        if is_cpu_f32(x) {
            return upsample::upsample2x(x);
        }
        if !x.track_op() {
            return x.upsample_nearest2d(h, w);
        }
    }
    let rows = Tensor::new(nearest_indices(hin, h), x.device())?;
    let cols = Tensor::new(nearest_indices(win, w), x.device())?;
    x.index_select(&rows, 2)?.index_select(&cols, 3)
}

/// Source index of each of `output` positions when resizing `input` positions (PyTorch's
/// `nearest_idx`).
fn nearest_indices(input: usize, output: usize) -> Vec<u32> {
    if output == input {
        return (0..output as u32).collect();
    }
    if output == 2 * input {
        return (0..output as u32).map(|i| i >> 1).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|i| ((i as f32 * scale).floor() as usize).min(input - 1) as u32)
        .collect()
}

#[cfg(test)]
mod tests;
