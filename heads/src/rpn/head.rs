//! The RPN head: a shared 3x3 conv + ReLU, then per-anchor objectness logits and box deltas
//! (torchvision's `RPNHead`), applied to every pyramid level with the same weights.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

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

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.conv2d(&self.weight, self.padding, 1, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
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
        })
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
                let t = self.conv.forward(f)?.relu()?;
                Ok((self.cls_logits.forward(&t)?, self.bbox_pred.forward(&t)?))
            })
            .collect()
    }
}
