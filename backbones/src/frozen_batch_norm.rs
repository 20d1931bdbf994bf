//! BatchNorm with fixed statistics and affine parameters, as torchvision's `FrozenBatchNorm2d`.
use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::conv::{conv2d, Conv2d};

/// `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`, folded once at load
/// time into `y = x * scale + shift` (torchvision folds it the same way in `forward`).
///
/// The four tensors are buffers: they are always plain tensors, never trained.
#[derive(Debug, Clone)]
pub struct FrozenBatchNorm2d {
    scale: Tensor, // [1, C, 1, 1]
    shift: Tensor, // [1, C, 1, 1]
}

impl FrozenBatchNorm2d {
    /// Reads `weight`, `bias`, `running_mean`, `running_var` (each `[channels]`) from `vb`.
    pub fn new(channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        let mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        // Buffers: cut any autograd link a backend may have attached.
        let (weight, bias, mean, var) =
            (weight.detach(), bias.detach(), mean.detach(), var.detach());
        let scale = (weight * (var + eps)?.sqrt()?.recip()?)?; // [C]
        let shift = (bias - (&mean * &scale)?)?; // [C]
        Ok(Self {
            scale: scale.reshape((1, channels, 1, 1))?,
            shift: shift.reshape((1, channels, 1, 1))?,
        })
    }

    /// `(scale, shift)`, each `[C]`: `y = x * scale[c] + shift[c]`.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let c = self.scale.dim(1)?;
        Ok((self.scale.reshape(c)?, self.shift.reshape(c)?))
    }

    /// The channels `start..start + len` only (for the block's explicit per-path forms).
    pub fn narrow(&self, start: usize, len: usize) -> Result<Self> {
        Ok(Self {
            scale: self.scale.narrow(1, start, len)?,
            shift: self.shift.narrow(1, start, len)?,
        })
    }

    /// `self.forward(conv.forward(x))` for a bias-free conv, computed as one conv: the scale
    /// is folded into the conv's weights (`w[co] * scale[co]`, on every call so trained weights
    /// stay current; gradients flow to `w` through the product) and the shift becomes its bias.
    /// Saves a full pass over the output.
    ///
    /// # Shapes
    /// `x: [N, Cin, H, W]` -> `[N, Cout, Ho, Wo]` (as `conv.forward`)
    pub fn forward_after(&self, conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
        let (w, _) = self.fold(conv.weight())?;
        conv2d(x, &w, conv.config())?.broadcast_add(&self.shift)
    }

    /// This BN folded into the bias-free conv weight before it: `(w * scale[co], shift)`, so
    /// that `conv(x, w') + b' = bn(conv(x, w))`. The one folding used by the CPU inference path
    /// ([`FrozenBatchNorm2d::forward_after`]) and by the ONNX export.
    ///
    /// # Shapes
    /// `weight: [Cout, Cin/G, k, k]` -> `([Cout, Cin/G, k, k], [Cout])`
    pub fn fold(&self, weight: &Tensor) -> Result<(Tensor, Tensor)> {
        let cout = self.scale.dim(1)?;
        let w = weight.broadcast_mul(&self.scale.reshape((cout, 1, 1, 1))?)?;
        Ok((w, self.shift.reshape(cout)?))
    }

    /// # Shapes
    /// `x: [N, C, H, W]` -> `[N, C, H, W]`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }
}

#[cfg(test)]
mod tests;
