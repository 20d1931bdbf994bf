//! Shared by the integration tests: fixture paths, the fixture's architecture, error metric.
#![allow(dead_code)]
use std::path::PathBuf;

use backbones::{BackboneConfig, BlockForm, ResNextConfig};
use candle_core::Tensor;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// The reduced ResNeXt of `fixtures/gen.py`.
pub fn tiny_config(eps: f64) -> BackboneConfig {
    BackboneConfig {
        body: ResNextConfig {
            layers: [2, 1, 2, 1],
            groups: 4,
            width_per_group: 32,
            stem_channels: 8,
            planes: [4, 8, 16, 32],
            block_form: BlockForm::Grouped,
            bn_eps: eps,
        },
        fpn_channels: 16,
        trainable_layers: 3,
    }
}

/// `max|a - b| / max|b|`; infinite when `ours` holds a NaN or an infinity (candle's `max`
/// skips NaNs, and a float a kernel never wrote is NaN in test builds).
pub fn max_relative_error(ours: &Tensor, reference: &Tensor) -> f32 {
    let values = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        eprintln!("non-finite output at flat index {i}: {}", values[i]);
        return f32::INFINITY;
    }
    let diff = (ours - reference)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap();
    let scale = reference
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap()
}

/// A convolution test case: (N, Cin, H, W, Cout, groups, k, stride, padding).
pub type ConvCase = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// Tolerance of one of our convolutions against candle's, relative to the output's largest
/// magnitude, for a conv with `cin` input channels: 1e-5 where only the summation order
/// differs (fan-ins of a few hundred terms: measured <= 1.1e-6), 5e-5 where it runs as
/// Winograd F(4x4, 3x3) (dense, stride 1, 3x3, >= 64 input channels; a dX of such a conv is
/// one with `cin` = its output channels). Its transforms scale values by up to 8 (`A^T`) and
/// 5 (`B^T`) before they cancel, so its rounding is about ten times the direct sum's (Lavin &
/// Gray 2016; Barabasz et al. 2020): measured <= 1.03e-5 over 40 runs of `conv_kernel.rs`.
/// A wrong tap, channel or index gives errors of order 1 either way.
pub fn conv_tolerance(cin: usize, groups: usize, k: usize, stride: usize) -> f32 {
    if groups == 1 && k == 3 && stride == 1 && cin >= 64 {
        5e-5
    } else {
        1e-5
    }
}
