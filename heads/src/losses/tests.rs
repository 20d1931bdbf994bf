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
