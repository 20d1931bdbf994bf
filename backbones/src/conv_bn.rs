//! A bias-free convolution followed by a [`FrozenBatchNorm2d`] (every conv of the ResNet body),
//! with the BN folded into the conv once at load time when the weights are fixed.
use candle_core::{Result, Tensor};

use crate::conv::{add_channel_bias, add_residual_relu, conv2d, is_cpu_f32, Conv2d};
use crate::frozen_batch_norm::FrozenBatchNorm2d;

/// `bn(conv(x))`, optionally followed by a residual add and a ReLU.
#[derive(Debug, Clone)]
pub enum ConvBn {
    /// Weights that may train (a `Var`): on CPU in f32 one differentiable fused node with the
    /// BN's scale on the weight and its shift as a fixed bias
    /// ([`crate::conv_kernel::conv2d_trainable`]); elsewhere the BN is folded into the weights
    /// on every call, so the gradient reaches `w` through the product
    /// ([`FrozenBatchNorm2d::forward_after`]).
    Separate { conv: Conv2d, bn: FrozenBatchNorm2d },
    /// Fixed weights (inference, frozen stages): folded once by [`FrozenBatchNorm2d::fold`]
    /// (the ONNX export's folding too) into a conv with bias, which then runs as one fused
    /// kernel on CPU ([`Conv2d::forward_with`]).
    Folded(Conv2d),
}

impl ConvBn {
    /// Folds `bn` into `conv` now unless the conv's weight needs a gradient.
    pub fn new(conv: Conv2d, bn: FrozenBatchNorm2d) -> Result<Self> {
        if conv.weight().track_op() {
            return Ok(Self::Separate { conv, bn });
        }
        let (w, b) = bn.fold(conv.weight())?;
        let folded =
            Conv2d::new(w.contiguous()?, Some(b.contiguous()?), conv.config()).prepared()?;
        Ok(Self::Folded(folded))
    }

    /// `relu?(bn(conv(x)) + residual)`.
    ///
    /// # Shapes
    /// `x: [N, Cin, H, W]`, `residual: [N, Cout, Ho, Wo]` -> `[N, Cout, Ho, Wo]`
    pub fn forward(&self, x: &Tensor, residual: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        match self {
            Self::Folded(conv) => conv.forward_with(x, residual, relu),
            // Autocast: the BN folded into the f32 weights (the gradient reaches `w` through
            // the product), then the conv in the autocast dtype with the shift as its bias.
            Self::Separate { conv, bn } if crate::autocast::dtype().is_some() => {
                let (w, b) = bn.fold(conv.weight())?;
                Conv2d::new(w, Some(b), conv.config()).forward_with(x, residual, relu)
            }
            Self::Separate { conv, bn } if is_cpu_f32(x) && is_cpu_f32(conv.weight()) => {
                let c = conv.config();
                let (scale, shift) = bn.scale_shift()?;
                crate::conv_kernel::conv2d_trainable(
                    x,
                    conv.weight(),
                    Some(&scale),
                    Some(&shift),
                    residual,
                    relu,
                    (c.stride, c.padding, c.groups),
                )
            }
            Self::Separate { conv, bn } => {
                add_residual_relu(bn.forward_after(conv, x)?, residual, relu)
            }
        }
    }

    /// The conv's weights as this form uses them: the raw ones when separate, `w * scale`
    /// when folded. `self.finish(conv2d(x, self.weight()))` equals `self.forward(x, None, false)`.
    pub fn weight(&self) -> &Tensor {
        match self {
            Self::Folded(conv) => conv.weight(),
            Self::Separate { conv, .. } => conv.weight(),
        }
    }

    /// What follows [`ConvBn::weight`]'s conv: the BN when separate, the bias when folded.
    ///
    /// # Shapes
    /// `y: [N, Cout, H, W]` -> `[N, Cout, H, W]`
    pub fn finish(&self, y: &Tensor) -> Result<Tensor> {
        match self {
            Self::Separate { bn, .. } => bn.forward(y),
            Self::Folded(conv) => add_channel_bias(y.clone(), conv.bias()),
        }
    }

    /// Output channels `start..start + len` only, as a conv with `groups` groups (the explicit
    /// per-path block forms).
    pub fn narrow(&self, start: usize, len: usize, groups: usize) -> Result<Self> {
        let narrow_conv = |conv: &Conv2d| -> Result<Conv2d> {
            let mut cfg = conv.config();
            cfg.groups = groups;
            let bias = conv.bias().map(|b| b.narrow(0, start, len)).transpose()?;
            Ok(Conv2d::new(conv.weight().narrow(0, start, len)?, bias, cfg))
        };
        Ok(match self {
            Self::Folded(conv) => Self::Folded(narrow_conv(conv)?),
            Self::Separate { conv, bn } => Self::Separate {
                conv: narrow_conv(conv)?,
                bn: bn.narrow(start, len)?,
            },
        })
    }

    /// `conv2d(x, w)` with this conv's geometry and the given weights (a slice of
    /// [`ConvBn::weight`]), without the BN or bias.
    pub fn conv_with(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let config = match self {
            Self::Folded(conv) => conv.config(),
            Self::Separate { conv, .. } => conv.config(),
        };
        conv2d(x, weight, config)
    }
}
