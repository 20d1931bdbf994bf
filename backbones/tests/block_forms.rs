//! The paper's Fig. 3: (a) sum of C paths, (b) concatenation + one 1x1, (c) grouped conv
//! compute the same block from the same weights.
//!
//! Tolerance: relative error <= 1e-5. The forms only reorder f32 sums (per-path partial sums
//! of conv3 in (a), separate convs per group in (a)/(b)); with fan-ins of a few hundred that
//! rounding is ~1e-7 relative, while any wrong weight slice gives errors of order 1.
mod common;

use std::collections::HashMap;

use backbones::block::BlockShape;
use backbones::{BlockForm, Bottleneck, CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};
use common::max_relative_error;

/// A bottleneck with random conv weights and random BN statistics.
fn random_block(shape: BlockShape) -> Bottleneck {
    let dev = Device::Cpu;
    let mut t = HashMap::new();
    let mut conv = |name: &str, dims: (usize, usize, usize, usize)| {
        let std = (2.0 / (dims.0 * dims.2 * dims.3) as f64).sqrt();
        t.insert(
            format!("{name}.weight"),
            Tensor::randn(0f32, std as f32, dims, &dev).unwrap(),
        );
    };
    let (cin, w, cout, g) = (
        shape.in_channels,
        shape.width,
        shape.out_channels,
        shape.groups,
    );
    conv("conv1", (w, cin, 1, 1));
    conv("conv2", (w, w / g, 3, 3));
    conv("conv3", (cout, w, 1, 1));
    conv("downsample.0", (cout, cin, 1, 1));
    for (bn, c) in [
        ("bn1", w),
        ("bn2", w),
        ("bn3", cout),
        ("downsample.1", cout),
    ] {
        t.insert(
            format!("{bn}.weight"),
            Tensor::rand(0.5f32, 1.5, c, &dev).unwrap(),
        );
        t.insert(
            format!("{bn}.bias"),
            Tensor::randn(0f32, 0.1, c, &dev).unwrap(),
        );
        t.insert(
            format!("{bn}.running_mean"),
            Tensor::randn(0f32, 0.1, c, &dev).unwrap(),
        );
        t.insert(
            format!("{bn}.running_var"),
            Tensor::rand(0.5f32, 2.0, c, &dev).unwrap(),
        );
    }
    let vb = CheckedWeights::new(WeightMap::new(t), &[]).var_builder(DType::F32, &dev);
    Bottleneck::new(shape, BlockForm::Grouped, 1e-5, vb).unwrap()
}

fn check_forms_agree(shape: BlockShape, hw: (usize, usize)) {
    let block = random_block(shape);
    let x = Tensor::randn(0f32, 1.0, (2, shape.in_channels, hw.0, hw.1), &Device::Cpu).unwrap();
    let grouped = block.forward(&x).unwrap();
    for form in [BlockForm::SumOfPaths, BlockForm::ConcatThenConv] {
        let other = block.with_form(form).forward(&x).unwrap();
        assert_eq!(other.dims(), grouped.dims());
        let err = max_relative_error(&other, &grouped);
        assert!(
            err <= 1e-5,
            "{form:?} vs grouped: relative error {err:.3e} ({shape:?})"
        );
    }
}

/// ResNeXt-50 32x4d stage-2 shapes (C = 32, d = 4), first block: stride 2 with projection.
#[test]
fn three_forms_agree_on_a_strided_32x4d_block() {
    let shape = BlockShape {
        in_channels: 256,
        width: 128,
        out_channels: 512,
        stride: 2,
        groups: 32,
    };
    check_forms_agree(shape, (11, 14));
}

/// An identity-shortcut block with wider groups (C = 8, d = 14), odd spatial size.
#[test]
fn three_forms_agree_on_an_identity_8x14d_block() {
    let shape = BlockShape {
        in_channels: 448,
        width: 112,
        out_channels: 448,
        stride: 1,
        groups: 8,
    };
    check_forms_agree(shape, (7, 9));
}

/// The whole reduced network of the parity fixture in form (a) matches form (c).
#[test]
fn whole_body_agrees_across_forms() {
    let dev = Device::Cpu;
    let map = WeightMap::load(common::fixture("tiny_weights.safetensors"), &dev)
        .unwrap()
        .to_detector_names();
    let vb = CheckedWeights::new(map, &[]).var_builder(DType::F32, &dev);
    let model =
        backbones::BackboneWithFpn::new(&common::tiny_config(1e-5), vb.pp("backbone")).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, 3, 64, 80), &dev).unwrap();
    let c = model.body.forward(&x).unwrap();
    let a = model
        .body
        .with_block_form(BlockForm::SumOfPaths)
        .forward(&x)
        .unwrap();
    for (ours, other) in c.iter().zip(&a) {
        assert!(max_relative_error(other, ours) <= 1e-5);
    }
}
