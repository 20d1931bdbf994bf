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
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn bce_matches_naive_formula_and_survives_large_logits() -> Result<()> {
        let x = Tensor::new(&[0.3f32, -2.0, 50.0, -80.0], &Device::Cpu)?;
        let t = Tensor::new(&[1f32, 0., 0., 0.], &Device::Cpu)?;
        let naive = |x: f64, t: f64| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        };
        // x = 50, t = 0: loss = 50 (naive form loses it: ln(1 - 1) = -inf).
        let want = (naive(0.3, 1.) + naive(-2.0, 0.) + 50.0 + 0.0) / 4.0;
        let got = scalar(&binary_cross_entropy_with_logits(&x, &t)?);
        assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
        Ok(())
    }

    #[test]
    fn smooth_l1_switches_at_beta() -> Result<()> {
        let beta = 1.0 / 9.0;
        let a = Tensor::new(&[0.05f32, 1.0, -0.5], &Device::Cpu)?;
        let b = Tensor::zeros(3, DType::F32, &Device::Cpu)?;
        let want = 0.5 * 0.05f64.powi(2) / beta + (1.0 - beta / 2.0) + (0.5 - beta / 2.0);
        let got = scalar(&smooth_l1_loss_sum(&a, &b, beta)?);
        assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");
        let empty = Tensor::zeros((0, 4), DType::F32, &Device::Cpu)?;
        assert_eq!(scalar(&smooth_l1_loss_sum(&empty, &empty, beta)?), 0.0);
        Ok(())
    }

    #[test]
    fn cross_entropy_matches_naive_and_has_gradient() -> Result<()> {
        let logits = Var::new(&[[1f32, 2., 3.], [0.5, -1., 0.]], &Device::Cpu)?;
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu)?;
        let loss = cross_entropy(logits.as_tensor(), &labels)?;
        let lse = |v: [f64; 3]| v.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = ((lse([1., 2., 3.]) - 3.0) + (lse([0.5, -1., 0.]) - 0.5)) / 2.0;
        assert!((f64::from(scalar(&loss)) - want).abs() < 1e-5);
        let grads = loss.backward()?;
        let g = grads.get(&logits).expect("gradient").to_vec2::<f32>()?;
        // d/dlogit = (softmax - onehot) / N; each row sums to zero.
        assert!(g.iter().all(|row| row.iter().sum::<f32>().abs() < 1e-6));
        assert!(g[0][2] < 0.0 && g[1][0] < 0.0);
        Ok(())
    }
}
