//! Autocast on the CPU against candle's own f64 convolution and matmul of the bf16-rounded
//! operands (a different implementation from ours: candle's im2col conv and gemm).
//!
//! Tolerance: the CPU autocast path is our f32 kernel on bf16-rounded operands, its output
//! rounded to bf16; the reference is the exact (f64) result on the same rounded operands,
//! rounded to bf16. They differ by our f32 kernel's error before the rounding (at most 5e-5 of
//! the largest output: the conv kernel tests' bound for Winograd F(4x4); 3e-6 measured here),
//! which may also move a value across a bf16 rounding boundary: one bf16 step more (2^-7 of
//! the value's power of two).
use backbones::autocast::{dtype, linear, scope};
use backbones::conv::{Conv2d, ConvConfig};
use backbones::conv_bn::ConvBn;
use candle_core::{DType, Device, Tensor, Var};

/// The spacing of bf16 numbers at `v` (8 significant bits).
fn bf16_step(v: f64) -> f64 {
    match v == 0.0 {
        true => 0.0,
        false => 2f64.powi(v.abs().log2().floor() as i32 - 7),
    }
}

fn rand(shape: &[usize], seed: u64) -> Tensor {
    // Deterministic values in [-1, 1) without a RNG crate: a multiplicative hash per index.
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed.wrapping_mul(0xbf58_476d);
            ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// `t` rounded to bf16, in f64.
fn rounded64(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Every `got` within one bf16 step of `want`; returns the largest relative difference.
fn assert_within_one_step(got: &Tensor, want: &Tensor, what: &str) -> f64 {
    let (g, w) = (values(got), values(want));
    assert_eq!(g.len(), w.len(), "{what}: sizes");
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs()));
    let mut worst = 0f64;
    for (i, (g, w)) in g.iter().zip(&w).enumerate() {
        let d = (g - w).abs();
        assert!(
            d <= bf16_step(g.abs().max(w.abs())) + 5e-5 * scale,
            "{what}[{i}]: {g} vs {w} (more than one bf16 step)"
        );
        worst = worst.max(d / w.abs().max(1e-6));
    }
    worst
}

#[test]
fn the_scope_nests_restores_and_refuses_full_precision() {
    assert_eq!(dtype(), None);
    {
        let _bf16 = scope(Some(DType::BF16)).unwrap();
        assert_eq!(dtype(), Some(DType::BF16));
        {
            let _off = scope(None).unwrap();
            assert_eq!(dtype(), None);
        }
        assert_eq!(dtype(), Some(DType::BF16));
    }
    assert_eq!(dtype(), None);
    let err = scope(Some(DType::F32)).err().expect("f32 is refused");
    assert!(err.to_string().contains("not a reduced precision"), "{err}");
    assert_eq!(dtype(), None, "a refused scope changes nothing");
}

/// A dense 3x3 (Winograd F(4x4) path at 64 channels), a grouped 3x3 and a 1x1, each with a
/// bias, a residual and a ReLU; forward in bf16 as the f64 conv of the rounded operands.
#[test]
fn a_conv_under_autocast_is_the_conv_of_bf16_rounded_operands() {
    for (cin, cout, k, groups, stride) in [(64, 64, 3, 1, 1), (32, 32, 3, 8, 2), (16, 24, 1, 1, 1)]
    {
        let pad = k / 2;
        let x = rand(&[2, cin, 11, 13], 1);
        let w = (rand(&[cout, cin / groups, k, k], 2) * 0.2).unwrap();
        let b = rand(&[cout], 3);
        let ho = (11 + 2 * pad - k) / stride + 1;
        let wo = (13 + 2 * pad - k) / stride + 1;
        let r = rand(&[2, cout, ho, wo], 4);
        let conv = Conv2d::new(
            w.clone(),
            Some(b.clone()),
            ConvConfig::new(stride, pad, groups),
        );

        let got = {
            let _bf16 = scope(Some(DType::BF16)).unwrap();
            conv.forward_with(&x, Some(&r), true).unwrap()
        };
        assert_eq!(got.dtype(), DType::BF16, "the output stays in bf16");

        let want = rounded64(&x)
            .conv2d(&rounded64(&w), pad, stride, 1, groups)
            .unwrap()
            .broadcast_add(&rounded64(&b).reshape((1, cout, 1, 1)).unwrap())
            .unwrap()
            .add(&rounded64(&r))
            .unwrap()
            .relu()
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let what = format!("conv {cin}->{cout} k{k} g{groups} s{stride}");
        assert_within_one_step(&got, &want, &what);

        // Without autocast the same conv answers in f32, and the two differ by bf16's
        // rounding, not more: a check that the scope above did something.
        let full = conv.forward_with(&x, Some(&r), true).unwrap();
        assert_eq!(full.dtype(), DType::F32);
        let diff = (full - got.to_dtype(DType::F32).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff > 0.0 && diff < 0.1,
            "{what}: f32 vs bf16 differ by {diff}"
        );
    }
}

/// Training: the gradients of weights under autocast come back in f32, as the gradient of
/// the f64 conv of the rounded operands with the output gradient rounded to bf16; a
/// [`ConvBn`] that trains folds its BN into the f32 weight first.
#[test]
fn gradients_under_autocast_are_f32_and_those_of_the_rounded_conv() {
    let x = rand(&[1, 64, 9, 10], 5);
    let w = Var::from_tensor(&(rand(&[64, 64, 3, 3], 6) * 0.1).unwrap()).unwrap();
    let g = rand(&[1, 64, 9, 10], 7); // the output gradient, through sum(y * g)
    let conv = Conv2d::new(w.as_tensor().clone(), None, ConvConfig::new(1, 1, 1));
    let y = {
        let _bf16 = scope(Some(DType::BF16)).unwrap();
        conv.forward(&x).unwrap()
    };
    let loss = y
        .to_dtype(DType::F32)
        .unwrap()
        .mul(&g)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let dw = grads.get(w.as_tensor()).expect("the weight has a gradient");
    assert_eq!(
        dw.dtype(),
        DType::F32,
        "the master weight's gradient is f32"
    );

    // Reference: d/dw sum(conv(xr, w) * gr) in f64, rounded to bf16 as the bf16 op's is.
    let w64 = Var::from_tensor(&rounded64(w.as_tensor())).unwrap();
    let yr = rounded64(&x).conv2d(w64.as_tensor(), 1, 1, 1, 1).unwrap();
    let lr = yr.mul(&rounded64(&g)).unwrap().sum_all().unwrap();
    let want = lr.backward().unwrap().get(w64.as_tensor()).unwrap().clone();
    let want = want.to_dtype(DType::BF16).unwrap();
    assert_within_one_step(dw, &want, "dW");

    // A trainable ConvBn under autocast: the BN (weight 1, bias 0, mean 0, var 1, the
    // VarMap's initial values) folded into the f32 weight, then the rounded conv.
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let bn = backbones::FrozenBatchNorm2d::new(64, 1e-5, vb).unwrap();
    let conv_bn = ConvBn::new(conv.clone(), bn).unwrap();
    assert!(
        matches!(conv_bn, ConvBn::Separate { .. }),
        "the weight trains"
    );
    let a = {
        let _bf16 = scope(Some(DType::BF16)).unwrap();
        conv_bn.forward(&x, None, false).unwrap()
    };
    assert_eq!(a.dtype(), DType::BF16);
    let scale = 1.0 / (1.0f64 + 1e-5).sqrt();
    let folded = (w.as_tensor() * scale).unwrap();
    let want = rounded64(&x)
        .conv2d(&rounded64(&folded), 1, 1, 1, 1)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    assert_within_one_step(&a, &want, "ConvBn");
}

/// `linear` under autocast: bf16 out, the f64 matmul of the rounded operands; without a scope
/// candle's `Linear` exactly.
#[test]
fn linear_under_autocast_is_the_matmul_of_bf16_rounded_operands() {
    let x = rand(&[5, 96], 8);
    let w = rand(&[7, 96], 9);
    let b = rand(&[7], 10);
    let plain = linear(&x, &w, Some(&b)).unwrap();
    let candle =
        candle_nn::Module::forward(&candle_nn::Linear::new(w.clone(), Some(b.clone())), &x)
            .unwrap();
    assert_eq!(values(&plain), values(&candle), "no scope: candle's Linear");

    let got = {
        let _bf16 = scope(Some(DType::BF16)).unwrap();
        linear(&x, &w, Some(&b)).unwrap()
    };
    assert_eq!(got.dtype(), DType::BF16);
    let want = rounded64(&x)
        .matmul(&rounded64(&w).t().unwrap())
        .unwrap()
        .broadcast_add(&rounded64(&b))
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    assert_within_one_step(&got, &want, "linear");
}

/// The paper's other two block forms run their per-path convs outside `ConvBn::forward`: under
/// autocast they are refused with an error saying so, not run with mixed dtypes.
#[test]
fn the_explicit_block_forms_refuse_autocast() {
    use backbones::block::{BlockForm, BlockShape, Bottleneck};
    let vb = candle_nn::VarBuilder::zeros(DType::F32, &Device::Cpu);
    let shape = BlockShape {
        in_channels: 16,
        width: 8,
        out_channels: 16,
        stride: 1,
        groups: 2,
    };
    let block = Bottleneck::new(shape, BlockForm::Grouped, 1e-5, vb).unwrap();
    let x = rand(&[1, 16, 5, 6], 11);
    let _bf16 = scope(Some(DType::BF16)).unwrap();
    assert_eq!(block.forward(&x).unwrap().dtype(), DType::BF16);
    for form in [BlockForm::ConcatThenConv, BlockForm::SumOfPaths] {
        let err = block.with_form(form).forward(&x).unwrap_err().to_string();
        assert!(err.contains("no mixed precision"), "{form:?}: {err}");
    }
}
