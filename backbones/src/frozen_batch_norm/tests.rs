use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::FrozenBatchNorm2d;
use crate::conv::{Conv2d, ConvConfig};

/// A BN with random statistics and affine parameters over `c` channels.
fn random_bn(c: usize, eps: f64) -> FrozenBatchNorm2d {
    let dev = Device::Cpu;
    let mut map = HashMap::new();
    map.insert("weight".into(), Tensor::randn(1f32, 0.5, c, &dev).unwrap());
    map.insert("bias".into(), Tensor::randn(0f32, 1.0, c, &dev).unwrap());
    map.insert(
        "running_mean".into(),
        Tensor::randn(0f32, 1.0, c, &dev).unwrap(),
    );
    let var = Tensor::rand(0.1f32, 2.0, c, &dev).unwrap();
    map.insert("running_var".into(), var);
    FrozenBatchNorm2d::new(c, eps, VarBuilder::from_tensors(map, DType::F32, &dev)).unwrap()
}

/// The folded conv (weight and bias from `fold`) equals BN applied after the plain conv, for a
/// strided grouped 3x3 conv. f32 sums of 36 products of O(1) values: 1e-4 covers the rounding
/// of the two orders of operations.
#[test]
fn folded_conv_matches_conv_then_bn() {
    let dev = Device::Cpu;
    let (cin, cout, groups) = (8, 12, 4);
    let bn = random_bn(cout, 1e-5);
    let weight = Tensor::randn(0f32, 1.0, (cout, cin / groups, 3, 3), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, cin, 9, 7), &dev).unwrap();
    let cfg = ConvConfig::new(2, 1, groups);
    let conv = Conv2d::new(weight.clone(), None, cfg);
    let reference = bn.forward(&conv.forward(&x).unwrap()).unwrap();

    let (w, b) = bn.fold(&weight).unwrap();
    assert_eq!(b.dims(), &[cout]);
    let folded = x
        .conv2d(&w, 1, 2, 1, groups)
        .unwrap()
        .broadcast_add(&b.reshape((1, cout, 1, 1)).unwrap())
        .unwrap();
    let diff = (folded - &reference)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-4, "max |folded - conv+bn| = {diff}");
    let via_forward_after = bn.forward_after(&conv, &x).unwrap();
    let diff = (via_forward_after - &reference)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-4, "max |forward_after - conv+bn| = {diff}");
}
