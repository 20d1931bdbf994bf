//! The RPN head: a shared 3x3 conv + ReLU, then per-anchor objectness logits and box deltas
//! (torchvision's `RPNHead`), applied to every pyramid level with the same weights.

use std::sync::Arc;

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// The convolution the head runs, with its bias and an optional ReLU:
/// `(input [N, Cin, H, W], weight [Cout, Cin, k, k], bias [Cout], padding, relu)
/// -> relu?(conv(input, weight) + bias) [N, Cout, H', W']`, stride 1, one group. The default
/// is candle's `conv2d` then a bias add and a ReLU; a caller with a faster kernel passes it in
/// (the detector passes its backbone's CPU kernel, which `heads` does not depend on: one fused
/// node, which in training keeps only its output alive). Whatever it is, it must be
/// differentiable for training.
type ConvImpl = dyn Fn(&Tensor, &Tensor, &Tensor, usize, bool) -> Result<Tensor> + Send + Sync;

/// A shareable convolution implementation for [`RpnHead`] (see [`ConvFn::new`]).
#[derive(Clone)]
pub struct ConvFn(Arc<ConvImpl>);

impl ConvFn {
    /// Wraps `f(input, weight, bias, padding, relu)`.
    pub fn new(
        f: impl Fn(&Tensor, &Tensor, &Tensor, usize, bool) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }

    /// candle's `Tensor::conv2d`, then the bias and the ReLU as separate ops.
    pub fn candle() -> Self {
        Self::new(|x, w, b, padding, relu| {
            let y = x
                .conv2d(w, padding, 1, 1, 1)?
                .broadcast_add(&b.reshape((1, (), 1, 1))?)?;
            if relu {
                y.relu()
            } else {
                Ok(y)
            }
        })
    }
}

impl Default for ConvFn {
    fn default() -> Self {
        Self::candle()
    }
}

impl std::fmt::Debug for ConvFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConvFn")
    }
}

/// One convolution with bias, stride 1.
#[derive(Debug, Clone)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
}

impl Conv {
    /// torchvision's RPN init: weights N(0, 0.01), bias 0.
    fn new(cin: usize, cout: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        let init = Init::Randn {
            mean: 0.0,
            stdev: 0.01,
        };
        Ok(Self {
            weight: vb.get_with_hints((cout, cin, k, k), "weight", init)?,
            bias: vb.get_with_hints(cout, "bias", Init::Const(0.0))?,
            padding: k / 2,
        })
    }
}

impl Conv {
    /// `relu?(conv(x) + bias)`: `[N, Cin, H, W]` -> `[N, Cout, H, W]`.
    fn forward(&self, x: &Tensor, conv: &ConvFn, relu: bool) -> Result<Tensor> {
        (conv.0)(x, &self.weight, &self.bias, self.padding, relu)
    }
}

/// Objectness and box-delta predictor of the RPN.
///
/// Weights: `conv.0.0.{weight,bias}` (torchvision >= 0.13) or `conv.{weight,bias}` (older
/// checkpoints; used when only that spelling is present), `cls_logits.*`, `bbox_pred.*`.
#[derive(Debug, Clone)]
pub struct RpnHead {
    conv: Conv,
    cls_logits: Conv,
    bbox_pred: Conv,
    conv_fn: ConvFn,
}

impl RpnHead {
    /// `vb` points at the head (`rpn.head`).
    pub fn new(in_channels: usize, num_anchors: usize, vb: VarBuilder) -> Result<Self> {
        let conv_vb = if !vb.contains_tensor("conv.0.0.weight") && vb.contains_tensor("conv.weight")
        {
            vb.pp("conv")
        } else {
            vb.pp("conv").pp("0").pp("0")
        };
        Ok(Self {
            conv: Conv::new(in_channels, in_channels, 3, conv_vb)?,
            cls_logits: Conv::new(in_channels, num_anchors, 1, vb.pp("cls_logits"))?,
            bbox_pred: Conv::new(in_channels, num_anchors * 4, 1, vb.pp("bbox_pred"))?,
            conv_fn: ConvFn::default(),
        })
    }

    /// The same head computing its three convolutions with `conv_fn`.
    pub fn with_conv(self, conv_fn: ConvFn) -> Self {
        Self { conv_fn, ..self }
    }

    /// Runs the head on every level.
    ///
    /// # Shapes
    /// - `features[l]`: `[B, C, H_l, W_l]`
    /// - returns per level `(objectness [B, A, H_l, W_l], deltas [B, 4A, H_l, W_l])`.
    pub fn forward(&self, features: &[Tensor]) -> Result<Vec<(Tensor, Tensor)>> {
        features
            .iter()
            .map(|f| {
                let t = self.conv.forward(f, &self.conv_fn, true)?; // [B, C, H, W]
                Ok((
                    self.cls_logits.forward(&t, &self.conv_fn, false)?,
                    self.bbox_pred.forward(&t, &self.conv_fn, false)?,
                ))
            })
            .collect()
    }
}
