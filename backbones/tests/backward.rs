//! Training needs gradients through the trainable layers: backward through the whole
//! backbone + FPN at an odd input size (where candle's own stride-2 conv backward fails),
//! with trainable weights as `Var`s and everything else plain tensors.
mod common;

use backbones::{is_trainable, BackboneWithFpn};
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

#[test]
fn backward_reaches_every_trainable_weight_at_odd_size() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let config = common::tiny_config(1e-5);
    let model = BackboneWithFpn::new(&config, vb).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 75, 101), &dev).unwrap();
    let features = model.forward(&x).unwrap();
    let loss = features
        .iter()
        .map(|p| p.sqr().unwrap().mean_all().unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    let grads = loss.backward().unwrap();

    let vars = varmap.data().lock().unwrap();
    let mut checked = 0;
    for (name, var) in vars.iter() {
        let grad = grads.get(var.as_tensor());
        let frozen_bn = !is_trainable(name, 5).unwrap() && !name.starts_with("fpn.");
        if frozen_bn {
            // FrozenBatchNorm2d detaches its buffers: no gradient flows into them.
            assert!(grad.is_none(), "{name} is a buffer but got a gradient");
            continue;
        }
        let grad = grad.unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = grad
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm.is_finite() && norm > 0.0, "{name}: |grad|^2 = {norm}");
        checked += 1;
    }
    // conv1 + 6 blocks x 3 convs + 4 downsample convs + 8 FPN weights + 8 FPN biases.
    assert_eq!(checked, 1 + 18 + 4 + 16);
}

/// `trainable_layers = 1`: only layer4 and the FPN are `Var`s (as the training glue builds
/// them); backward works, reaches them, and nothing else (frozen inputs skip dX).
#[test]
fn backward_with_frozen_early_stages() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let config = common::tiny_config(1e-5);
    BackboneWithFpn::new(&config, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(name, var)| match is_trainable(name, 1).unwrap() {
            true => (name.clone(), var.as_tensor().clone()),
            false => (name.clone(), var.as_tensor().detach()),
        })
        .collect();
    let model =
        BackboneWithFpn::new(&config, VarBuilder::from_tensors(tensors, DType::F32, &dev)).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, 3, 67, 93), &dev).unwrap();
    let loss = model
        .forward(&x)
        .unwrap()
        .iter()
        .map(|p| p.sqr().unwrap().mean_all().unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    let grads = loss.backward().unwrap();
    let mut trained = 0;
    for (name, var) in vars.iter() {
        let expected = is_trainable(name, 1).unwrap();
        assert_eq!(grads.get(var.as_tensor()).is_some(), expected, "{name}");
        trained += usize::from(expected);
    }
    assert_eq!(trained, 4 + 16); // layer4: 3 convs + downsample; FPN: 8 weights + 8 biases
}
