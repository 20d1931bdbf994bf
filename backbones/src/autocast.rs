//! Mixed precision in the manner of PyTorch's `torch.autocast(dtype=torch.bfloat16)`
//! (`--precision bf16`): inside a [`scope`], convolutions (`conv::Conv2d`,
//! `conv_bn::ConvBn`) and matmuls ([`linear`]) take their operands in the scope's
//! dtype and return their output in it; the weights stay f32 (the optimizer's master copy),
//! cast at each use, so their gradients come back in f32 through the cast. Everything else
//! runs in the dtype it is given: the elementwise ops between convolutions follow the
//! activations, and the heads cast back to f32 where torchvision's autocast runs in f32
//! (RoIAlign, the losses, box decoding, NMS).
//!
//! - CUDA: the operands are cast and the op runs in bf16 (cuDNN / cuBLAS tensor cores, f32
//!   accumulation), so activations and what backward keeps take half the memory.
//! - CPU: the operands are rounded to bf16 and our f32 kernels run on the rounded values, the
//!   output rounded to bf16: bf16 products are exact in f32, so this is the arithmetic of a
//!   tensor core (bf16 inputs, f32 sums) up to the order of the sums. It gives the numbers of
//!   bf16 training, not its speed (the casts cost time): a check of the numerics, not a fast
//!   path.
//!
//! The scope is per thread (as PyTorch's), set by the model around its forward.
use std::cell::Cell;

use candle_core::{DType, Result, Tensor};

thread_local! {
    static DTYPE: Cell<Option<DType>> = const { Cell::new(None) };
}

/// Autocast on this thread until the guard is dropped (then the previous state again).
#[must_use = "autocast ends when the guard is dropped"]
pub struct Scope {
    previous: Option<DType>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        DTYPE.with(|d| d.set(self.previous));
    }
}

/// Runs this thread's convolutions and matmuls in `dtype` (`None`: in the dtype of their
/// inputs, the default) until the returned guard is dropped. Only `BF16` and `F16` are
/// accepted, as `torch.autocast`.
pub fn scope(dtype: Option<DType>) -> Result<Scope> {
    if let Some(dt) = dtype {
        if !matches!(dt, DType::BF16 | DType::F16) {
            candle_core::bail!("autocast: {dt:?} is not a reduced precision (bf16 or f16)")
        }
    }
    let previous = DTYPE.with(|d| d.replace(dtype));
    Ok(Scope { previous })
}

/// The autocast dtype of this thread, if any.
pub fn dtype() -> Option<DType> {
    DTYPE.with(|d| d.get())
}

/// `t` rounded to `dtype` and widened back to f32 (differentiable: the gradient is rounded the
/// same way on its way back, as the gradient of a bf16 op is). A tensor already in `dtype` is
/// only widened.
pub fn rounded_f32(t: &Tensor, dtype: DType) -> Result<Tensor> {
    t.to_dtype(dtype)?.to_dtype(DType::F32)
}

/// `x @ weight^T + bias` (candle's `Linear`) under this thread's autocast.
///
/// # Shapes
/// `x: [K, in]`, `weight: [out, in]`, `bias: [out]` -> `[K, out]`
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let plain = |x: &Tensor, w: &Tensor, b: Option<&Tensor>| -> Result<Tensor> {
        let y = x.matmul(&w.t()?)?;
        match b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    };
    let Some(dt) = dtype() else {
        return plain(x, weight, bias);
    };
    if x.device().is_cpu() {
        let b = bias.map(|b| rounded_f32(b, dt)).transpose()?;
        let y = plain(&rounded_f32(x, dt)?, &rounded_f32(weight, dt)?, b.as_ref())?;
        return y.to_dtype(dt);
    }
    let b = bias.map(|b| b.to_dtype(dt)).transpose()?;
    plain(&x.to_dtype(dt)?, &weight.to_dtype(dt)?, b.as_ref())
}

// Tests: backbones/tests/autocast.rs (they use the conv modules, which use this one).
