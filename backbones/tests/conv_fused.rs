//! The fused inference convolution (`conv_kernel::conv2d_fused`: conv + bias + residual + ReLU
//! in the kernel's output loop) against the unfused composition of candle ops, on every kernel
//! it dispatches to (1x1 gemm at stride 1 and 2, direct grouped at stride 1 and 2 with 4 to 32
//! channels per group, im2col, Winograd, shifted gemms).
//!
//! Tolerance: relative error <= 1e-5, as `conv_kernel.rs`: both sides are f32 with fan-ins of at
//! most a few hundred terms and differ only in summation order (and in where the bias is added,
//! one more rounding); 5e-5 for Winograd F(4x4, 3x3) (`common::conv_tolerance`); a wrong tap,
//! channel, bias or residual index gives errors of order 1.
mod common;

use backbones::conv::{Conv2d, ConvConfig};
use backbones::conv_kernel::{conv2d_fused, prepare_filters, FilterCache};
use candle_core::{Device, Tensor, Var};
use common::{conv_tolerance, max_relative_error, ConvCase as Case};

const CASES: [Case; 13] = [
    (2, 16, 9, 11, 24, 1, 1, 1, 0),  // 1x1 gemm, two images
    (1, 32, 13, 10, 64, 1, 1, 2, 0), // 1x1 stride 2 (downsample), odd size
    (1, 8, 300, 3, 8, 1, 1, 1, 0),   // 1x1 over several pixel tiles
    (1, 16, 9, 37, 16, 4, 3, 1, 1),  // direct, 4 channels per group, row wider than a block
    (2, 32, 10, 9, 32, 4, 3, 2, 1),  // direct, stride 2, 8 per group, odd output width
    (1, 64, 8, 7, 64, 4, 3, 1, 1),   // direct, 16 per group
    (1, 64, 9, 12, 64, 2, 3, 2, 1),  // direct, 32 per group, stride 2
    (1, 12, 7, 9, 6, 2, 3, 1, 1),    // direct, 3 outputs per group (not a multiple of 4)
    (1, 3, 17, 20, 8, 1, 7, 2, 3),   // the stem (im2col)
    (1, 64, 37, 41, 16, 1, 3, 1, 1), // Winograd
    (2, 128, 7, 9, 64, 2, 3, 1, 1),  // shifted gemms
    (1, 64, 9, 10, 32, 1, 3, 2, 1),  // im2col, dense stride 2
    (1, 6, 5, 7, 4, 2, 1, 1, 0),     // grouped 1x1 (direct)
];

fn random(dims: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap()
}

/// candle's conv2d, then the bias, the residual and the ReLU as separate ops.
fn unfused(x: &Tensor, w: &Tensor, b: &Tensor, r: Option<&Tensor>, relu: bool, c: Case) -> Tensor {
    let (_, _, _, _, cout, g, _, s, p) = c;
    let y = x.conv2d(w, p, s, 1, g).unwrap();
    let y = y
        .broadcast_add(&b.reshape((1, cout, 1, 1)).unwrap())
        .unwrap();
    let y = match r {
        Some(r) => (y + r).unwrap(),
        None => y,
    };
    if relu {
        y.relu().unwrap()
    } else {
        y
    }
}

#[test]
fn fused_conv_matches_conv_then_bias_residual_relu() {
    for case in CASES {
        let (n, c, h, w, cout, g, k, s, p) = case;
        let x = random(&[n, c, h, w]);
        let wt = random(&[cout, c / g, k, k]);
        let b = random(&[cout]);
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let r = random(&[n, cout, ho, wo]);
        for (residual, relu) in [
            (None, false),
            (None, true),
            (Some(&r), true),
            (Some(&r), false),
        ] {
            let ours = conv2d_fused(&x, &wt, Some(&b), residual, relu, s, p, g, None).unwrap();
            let reference = unfused(&x, &wt, &b, residual, relu, case);
            let err = max_relative_error(&ours, &reference);
            assert!(
                err <= conv_tolerance(c, g, k, s),
                "case {case:?} residual {} relu {relu}: {err:.3e}",
                residual.is_some()
            );
        }
    }
}

#[test]
fn fused_conv_without_bias_is_the_plain_conv() {
    let case = (1, 16, 9, 37, 16, 4, 3, 1, 1);
    let (_, c, h, w, cout, g, k, s, p) = case;
    let x = random(&[1, c, h, w]);
    let wt = random(&[cout, c / g, k, k]);
    let ours = conv2d_fused(&x, &wt, None, None, false, s, p, g, None).unwrap();
    let reference = x.conv2d(&wt, p, s, 1, g).unwrap();
    assert!(max_relative_error(&ours, &reference) <= 1e-5);
}

#[test]
fn fused_conv_refuses_inputs_that_need_a_gradient() {
    let x = Var::from_tensor(&random(&[1, 4, 5, 5])).unwrap();
    let wt = random(&[4, 4, 1, 1]);
    let err = conv2d_fused(x.as_tensor(), &wt, None, None, false, 1, 0, 1, None).unwrap_err();
    assert!(err.to_string().contains("inference only"), "{err}");
}

#[test]
fn fused_conv_checks_residual_and_bias_shapes() {
    let x = random(&[1, 4, 5, 5]);
    let wt = random(&[8, 4, 1, 1]);
    let bad_bias = random(&[4]);
    let err = conv2d_fused(&x, &wt, Some(&bad_bias), None, false, 1, 0, 1, None).unwrap_err();
    assert!(err.to_string().contains("bias [4], expected [8]"), "{err}");
    let bad_res = random(&[1, 8, 5, 4]);
    let err = conv2d_fused(&x, &wt, None, Some(&bad_res), false, 1, 0, 1, None).unwrap_err();
    assert!(err.to_string().contains("residual [1, 8, 5, 4]"), "{err}");
}

/// With trainable weights `forward_with` composes differentiable ops: the gradient of
/// `sum(relu(conv(x) + b + r))` reaches the weight and equals the unfused graph's.
#[test]
fn forward_with_trainable_weights_keeps_gradients() {
    let x = random(&[1, 8, 6, 7]);
    let (w0, b0, r) = (random(&[8, 2, 3, 3]), random(&[8]), random(&[1, 8, 6, 7]));
    let (w, b) = (
        Var::from_tensor(&w0).unwrap(),
        Var::from_tensor(&b0).unwrap(),
    );
    let conv = Conv2d::new(
        w.as_tensor().clone(),
        Some(b.as_tensor().clone()),
        ConvConfig::new(1, 1, 4),
    );
    let y = conv.forward_with(&x, Some(&r), true).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let dw = grads.get(w.as_tensor()).expect("a gradient for the weight");
    let (w2, b2) = (
        Var::from_tensor(&w0).unwrap(),
        Var::from_tensor(&b0).unwrap(),
    );
    let reference = unfused(
        &x,
        w2.as_tensor(),
        b2.as_tensor(),
        Some(&r),
        true,
        (1, 8, 6, 7, 8, 4, 3, 1, 1),
    );
    let grads2 = reference.sum_all().unwrap().backward().unwrap();
    let dw2 = grads2.get(w2.as_tensor()).unwrap();
    assert!(max_relative_error(&y, &reference) <= 1e-5);
    assert!(max_relative_error(dw, dw2) <= 1e-5);
    let db = grads.get(b.as_tensor()).expect("a gradient for the bias");
    assert!(max_relative_error(db, grads2.get(b2.as_tensor()).unwrap()) <= 1e-5);
}

/// The inference filter cache (Winograd's transformed filters): a call that reuses it gives
/// the bits of an uncached call, and a cache handed another weight (another tensor) transforms
/// that weight instead of serving the one it holds.
#[test]
fn filter_cache_serves_only_its_own_weight() {
    let x = random(&[1, 64, 13, 15]); // dense stride-1 3x3, 64 channels: Winograd
    let (w1, w2) = (random(&[32, 64, 3, 3]), random(&[32, 64, 3, 3]));
    let run = |w: &Tensor, cache: Option<&FilterCache>| {
        let y = conv2d_fused(&x, w, None, None, false, 1, 1, 1, cache).unwrap();
        y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (plain1, plain2) = (run(&w1, None), run(&w2, None));
    assert_ne!(plain1, plain2);
    let cache = FilterCache::default();
    for _ in 0..2 {
        assert_eq!(run(&w1, Some(&cache)), plain1);
    }
    // Filled ahead (at model load), as the FPN and the folded backbone convs do.
    let ahead = FilterCache::default();
    prepare_filters(&ahead, &w2, 1, 1).unwrap();
    assert_eq!(run(&w2, Some(&ahead)), plain2);
    assert_eq!(run(&w2, Some(&cache)), plain2);
    assert_eq!(run(&w1, Some(&cache)), plain1);
}
