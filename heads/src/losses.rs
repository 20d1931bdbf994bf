//! The loss functions of the RPN and the box head, written from differentiable candle ops.

use candle_core::{DType, Result, Tensor, D};

/// Smooth-L1 `beta` of both box losses, RPN and box head (torchvision: `1 / 9`).
pub const SMOOTH_L1_BETA: f64 = 1.0 / 9.0;

/// Mean binary cross-entropy of `logits` against `targets` in `[0, 1]`, computed as
/// `max(x, 0) - x * t + ln(1 + exp(-|x|))`, which stays finite for any logit
/// (`candle_nn`'s sigmoid-then-log version overflows near |x| = 30).
///
/// # Shapes
/// - `logits`, `targets`: `[N]`; returns a scalar. `N = 0` is an error (the mean of nothing).
pub fn binary_cross_entropy_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.elem_count() == 0 {
        candle_core::bail!("binary_cross_entropy_with_logits: no elements");
    }
    let targets = targets.to_dtype(logits.dtype())?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - (logits * targets)?)? + softplus)?;
    loss.mean_all()
}

/// Summed smooth-L1 (Huber) loss: `0.5 * d^2 / beta` where `|d| < beta`, else `|d| - beta / 2`.
///
/// # Shapes
/// - `input`, `target`: same shape; returns a scalar (0 for no elements).
pub fn smooth_l1_loss_sum(input: &Tensor, target: &Tensor, beta: f64) -> Result<Tensor> {
    if input.elem_count() == 0 {
        return Tensor::zeros((), input.dtype(), input.device());
    }
    let diff = (input - target)?;
    let abs = diff.abs()?;
    let quadratic = (diff.sqr()? * (0.5 / beta))?;
    let linear = (&abs - 0.5 * beta)?;
    abs.lt(beta)?.where_cond(&quadratic, &linear)?.sum_all()
}

/// Mean cross-entropy of `logits` against class indices `labels`.
///
/// # Shapes
/// - `logits`: `[N, C]`, `labels`: `[N]` integer; returns a scalar. `N = 0` is an error.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (n, _) = logits.dims2()?;
    if n == 0 {
        candle_core::bail!("cross_entropy: no elements");
    }
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?; // [N, C]
    let labels = labels.to_dtype(DType::U32)?.unsqueeze(1)?; // [N, 1]
    log_probs.gather(&labels, 1)?.neg()?.mean_all()
}

#[cfg(test)]
mod tests;
