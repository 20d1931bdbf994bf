//! The differentiable fused convolution for training: `relu?(conv2d(x, w * scale) + bias +
//! residual)` as ONE autograd node.
//!
//! Why: composed of candle ops, a trainable conv + frozen BN + residual + ReLU keeps up to
//! four output-sized tensors alive until the loss is dropped (conv out, + shift, + residual,
//! ReLU out), and candle's backward leaves a full-size gradient in the `GradStore` for every
//! operand that needs none (the broadcast BN shift, the frozen input of a matmul). This node
//! keeps only its output (the ReLU mask is `y > 0`, as PyTorch's `threshold_backward` reads
//! it), and returns no gradient for operands that do not need one.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::forward::forward;
use super::im2col::{slice, Geometry, Unfilled};
use super::{scaled_rows, BackwardInput, BackwardWeight};

/// What the op's optional third input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Third {
    None,
    /// A bias that needs a gradient, `[Cout]`.
    Bias,
    /// The residual, `[N, Cout, Ho, Wo]`.
    Residual,
}

struct ConvAct {
    geo: Geometry,
    /// Per output channel factor on the weight (a frozen BN's scale), `[Cout]`.
    scale: Option<Vec<f32>>,
    /// A bias that needs no gradient (a frozen BN's shift), `[Cout]`.
    fixed_bias: Option<Vec<f32>>,
    third: Third,
    relu: bool,
}

/// `relu?(conv2d(x, weight * scale[co]) + bias[co] + residual)` on CPU f32 tensors,
/// differentiable in `x`, `weight`, `bias` and `residual` (each only when it needs it).
/// `scale` never trains; a `bias` that needs no gradient is read once as a constant.
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin / groups, k, k]`, `scale`, `bias: [Cout]`,
/// `residual: [N, Cout, Ho, Wo]` -> `[N, Cout, Ho, Wo]`
#[allow(clippy::too_many_arguments)]
pub fn conv2d_trainable(
    x: &Tensor,
    weight: &Tensor,
    scale: Option<&Tensor>,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
    relu: bool,
    (stride, padding, groups): (usize, usize, usize),
) -> Result<Tensor> {
    let geo = Geometry::new(x.dims4()?, weight.dims4()?, stride, padding, groups)?;
    let out_dims = [geo.n, geo.cout, geo.ho, geo.wo];
    for (name, t) in [("scale", scale), ("bias", bias)] {
        if let Some(t) = t.filter(|t| t.dims() != [geo.cout]) {
            candle_core::bail!(
                "conv2d_trainable: {name} {:?}, expected [{}]",
                t.dims(),
                geo.cout
            )
        }
    }
    if let Some(r) = residual.filter(|r| r.dims() != out_dims) {
        candle_core::bail!(
            "conv2d_trainable: residual {:?}, expected {out_dims:?}",
            r.dims()
        )
    }
    if scale.is_some_and(|s| s.track_op()) {
        candle_core::bail!("conv2d_trainable: the weight scale cannot need a gradient")
    }
    let trained_bias = bias.filter(|b| b.track_op());
    if let (Some(_), Some(r)) = (trained_bias, residual) {
        // Four inputs: the residual add and the ReLU as separate nodes.
        let y = conv2d_trainable(
            x,
            weight,
            scale,
            bias,
            None,
            false,
            (stride, padding, groups),
        )?;
        let y = (y + r)?;
        return if relu { y.relu() } else { Ok(y) };
    }
    let op = ConvAct {
        geo,
        scale: scale.map(|s| s.to_vec1::<f32>()).transpose()?,
        fixed_bias: match trained_bias {
            Some(_) => None,
            None => bias.map(|b| b.to_vec1::<f32>()).transpose()?,
        },
        third: match (trained_bias, residual) {
            (Some(_), _) => Third::Bias,
            (None, Some(_)) => Third::Residual,
            (None, None) => Third::None,
        },
        relu,
    };
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match trained_bias.or(residual) {
        Some(t) => x.apply_op3(&weight, &t.contiguous()?, op),
        None => x.apply_op2(&weight, op),
    }
}

impl ConvAct {
    fn name(&self) -> &'static str {
        "conv2d-trainable"
    }

    fn fwd(&self, x: &[f32], w: &[f32], third: Option<&[f32]>) -> (CpuStorage, Shape) {
        let geo = &self.geo;
        let scaled = scaled_rows(w, self.scale.as_deref());
        let w = &scaled[..];
        let ep = Epilogue {
            bias: match self.third {
                Third::Bias => third,
                _ => self.fixed_bias.as_deref(),
            },
            residual: match self.third {
                Third::Residual => third,
                _ => None,
            },
            relu: self.relu,
        };
        let out = forward(geo, x, w, &ep);
        (
            CpuStorage::F32(out),
            Shape::from((geo.n, geo.cout, geo.ho, geo.wo)),
        )
    }

    /// Gradients of x, weight and the third input from the output `y` and its gradient.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        third: Option<&Tensor>,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The gradient before the ReLU, the residual add and the bias.
        let dz = match self.relu {
            true => grad.contiguous()?.apply_op2_no_bwd(y, &ReluBackward)?,
            false => grad.contiguous()?,
        };
        let dw = match w.track_op() {
            true => Some(x.apply_op2_no_bwd(
                &dz,
                &BackwardWeight {
                    geo: self.geo,
                    scale: self.scale.clone(),
                },
            )?),
            false => None,
        };
        let dx = match x.track_op() {
            true => Some(dz.apply_op2_no_bwd(
                &w.detach(),
                &BackwardInput {
                    geo: self.geo,
                    scale: self.scale.clone(),
                },
            )?),
            false => None,
        };
        let dthird = match (self.third, third) {
            (Third::Bias, Some(b)) if b.track_op() => Some(dz.apply_op1_no_bwd(&ChannelSum)?),
            (Third::Residual, Some(r)) if r.track_op() => Some(dz),
            _ => None,
        };
        Ok((dx, dw, dthird))
    }
}

impl CustomOp2 for ConvAct {
    fn name(&self) -> &'static str {
        ConvAct::name(self)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?);
        Ok(self.fwd(x, w, None))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = ConvAct::bwd(self, x, w, None, y, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ConvAct {
    fn name(&self) -> &'static str {
        ConvAct::name(self)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?);
        let third = slice(s3, l3, "bias or residual")?;
        Ok(self.fwd(x, w, Some(third)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        third: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        ConvAct::bwd(self, x, w, Some(third), y, grad)
    }
}

/// `grad * (y > 0)`: inputs (grad, y), both contiguous and of one shape.
struct ReluBackward;

impl CustomOp2 for ReluBackward {
    fn name(&self) -> &'static str {
        "relu-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (grad, y) = (slice(s1, l1, "gradient")?, slice(s2, l2, "output")?);
        let mut out = Unfilled::new(grad.len());
        out.slots()
            .par_chunks_mut(16_384)
            .zip(grad.par_chunks(16_384).zip(y.par_chunks(16_384)))
            .for_each(|(o, (g, y))| {
                for ((o, g), y) in o.iter_mut().zip(g).zip(y) {
                    o.write(if *y > 0.0 { *g } else { 0.0 });
                }
            });
        // SAFETY: the chunks cover all of `grad`, which is as long as `out`.
        let out = unsafe { out.assume_filled() };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `sum over (n, y, x) of g[n, c, y, x]`: `[N, C, H, W]` (contiguous) -> `[C]`, the gradient
/// of a per-channel bias. One task per channel; 16 partial sums per row (vectorised), rows
/// summed in f64. candle's `sum((0, 2, 3))` took 3% of a training step.
struct ChannelSum;

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = slice(s, l, "gradient")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let hw = h * w;
        let sums: Vec<f32> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let total: f64 = (0..n)
                    .map(|i| {
                        let row = &g[(i * c + ch) * hw..][..hw];
                        let mut lanes = [0f32; 16];
                        let mut chunks = row.chunks_exact(16);
                        for chunk in &mut chunks {
                            for (l, v) in lanes.iter_mut().zip(chunk) {
                                *l += v;
                            }
                        }
                        let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
                        lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
                    })
                    .sum();
                total as f32
            })
            .collect();
        Ok((CpuStorage::F32(sums), Shape::from(c)))
    }
}
