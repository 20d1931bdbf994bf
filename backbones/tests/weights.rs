//! Weight loading: `.pth` vs `.safetensors`, both FPN key spellings, ImageNet checkpoints,
//! and the errors for missing keys and wrong shapes.
mod common;

use std::collections::HashMap;

use backbones::{BackboneWithFpn, CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};
use common::{fixture, max_relative_error, tiny_config};

fn load(name: &str) -> WeightMap {
    WeightMap::load(fixture(name), &Device::Cpu)
        .unwrap()
        .to_detector_names()
}

/// `tiny_weights.pth` is a detector checkpoint (`backbone.` prefix) with the old FPN spelling
/// (`backbone.fpn.inner_blocks.0.weight`); the safetensors is a BackboneWithFPN state dict with
/// the new one. After renaming they hold the same names and bit-identical tensors.
#[test]
fn pth_and_safetensors_give_identical_tensors() {
    let (pth, st) = (load("tiny_weights.pth"), load("tiny_weights.safetensors"));
    let mut keys: Vec<&String> = st.tensors().keys().collect();
    keys.sort();
    let mut pth_keys: Vec<&String> = pth.tensors().keys().collect();
    pth_keys.sort();
    assert_eq!(keys, pth_keys);
    assert!(keys
        .iter()
        .any(|k| *k == "backbone.fpn.inner_blocks.0.0.weight"));
    for key in keys {
        let (a, b) = (&pth.tensors()[key], &st.tensors()[key]);
        assert_eq!(a.dims(), b.dims(), "{key}");
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{key} differs"
        );
    }
}

fn build(
    map: WeightMap,
    init_under: &[&str],
) -> (candle_core::Result<BackboneWithFpn>, CheckedWeights) {
    let weights = CheckedWeights::new(map, init_under);
    let vb = weights.var_builder(DType::F32, &Device::Cpu);
    (
        BackboneWithFpn::new(&tiny_config(1e-5), vb.pp("backbone")),
        weights,
    )
}

fn edited(edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> WeightMap {
    let mut tensors = load("tiny_weights.safetensors").tensors().clone();
    edit(&mut tensors);
    WeightMap::new(tensors)
}

#[test]
fn missing_tensor_error_names_key_and_expected_shape() {
    let map = edited(|t| {
        t.remove("backbone.body.layer3.1.conv2.weight");
    });
    let msg = build(map, &[]).0.unwrap_err().to_string();
    assert!(
        msg.contains("missing tensor `backbone.body.layer3.1.conv2.weight`"),
        "{msg}"
    );
    assert!(msg.contains("expected shape [32, 8, 3, 3]"), "{msg}");
}

#[test]
fn shape_mismatch_error_names_key_expected_and_found() {
    let map = edited(|t| {
        let wrong = Tensor::zeros((16, 63, 1, 1), DType::F32, &Device::Cpu).unwrap();
        t.insert("backbone.fpn.inner_blocks.2.0.weight".into(), wrong);
    });
    let msg = build(map, &[]).0.unwrap_err().to_string();
    assert!(
        msg.contains("`backbone.fpn.inner_blocks.2.0.weight`"),
        "{msg}"
    );
    assert!(
        msg.contains("has shape [16, 63, 1, 1], expected [16, 64, 1, 1]"),
        "{msg}"
    );
}

#[test]
fn unused_keys_are_listed() {
    let map = edited(|t| {
        let extra = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        t.insert("backbone.body.layer5.0.conv1.weight".into(), extra.clone());
        t.insert("rpn.head.conv.0.0.weight".into(), extra);
    });
    let (model, weights) = build(map, &[]);
    model.unwrap();
    assert_eq!(
        weights.unused_keys(),
        [
            "backbone.body.layer5.0.conv1.weight",
            "rpn.head.conv.0.0.weight"
        ]
    );
}

/// An ImageNet classifier's state dict (`conv1.weight`, `layer1.0.conv2.weight`, `fc.*`) loads
/// into the body; `fc.*` is ignored, the FPN is freshly initialised, C2..C5 match torchvision.
#[test]
fn imagenet_checkpoint_loads_into_body() {
    let dev = Device::Cpu;
    let st = WeightMap::load(fixture("tiny_weights.safetensors"), &dev).unwrap();
    let mut tensors: HashMap<String, Tensor> = st
        .tensors()
        .iter()
        .filter_map(|(k, t)| Some((k.strip_prefix("body.")?.to_string(), t.clone())))
        .collect();
    tensors.insert(
        "fc.weight".into(),
        Tensor::zeros((1000, 128), DType::F32, &dev).unwrap(),
    );
    tensors.insert(
        "fc.bias".into(),
        Tensor::zeros(1000, DType::F32, &dev).unwrap(),
    );
    let map = WeightMap::new(tensors).to_detector_names();
    assert_eq!(map.ignored(), ["fc.bias", "fc.weight"]);

    // Strict: the FPN is missing.
    let msg = build(map.clone(), &[]).0.unwrap_err().to_string();
    assert!(msg.contains("missing tensor `backbone.fpn."), "{msg}");

    let (model, weights) = build(map, &["backbone.fpn."]);
    let model = model.unwrap();
    assert!(weights.unused_keys().is_empty());
    assert_eq!(weights.initialised_keys().len(), 16); // 4 levels x 2 convs x (weight, bias)
    let outputs =
        candle_core::safetensors::load(fixture("tiny_outputs.safetensors"), &dev).unwrap();
    let c = model.body.forward(&outputs["a.input"]).unwrap();
    assert!(max_relative_error(&c[3], &outputs["a.c5"]) <= 1e-4);
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let msg = WeightMap::load(fixture("gen.py"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("gen.py"), "{msg}");
}

/// A real torchvision classifier `.pth` (`fixtures/tiny_imagenet.pth`: BatchNorm2d with int64
/// `num_batches_tracked`, `fc.*`, no prefix) loads into the body; C2..C5 match torchvision.
#[test]
fn torchvision_imagenet_pth_loads_into_body() {
    let dev = Device::Cpu;
    let map = load("tiny_imagenet.pth");
    assert!(map.ignored().iter().any(|k| k == "fc.weight"));
    assert!(map
        .tensors()
        .keys()
        .all(|k| k.starts_with("backbone.body.")));
    let (model, weights) = build(map, &["backbone.fpn."]);
    let model = model.unwrap();
    assert_eq!(weights.unused_keys(), Vec::<String>::new());
    let outputs =
        candle_core::safetensors::load(fixture("tiny_outputs.safetensors"), &dev).unwrap();
    let c = model.body.forward(&outputs["a.input"]).unwrap();
    for (i, name) in ["a.c2", "a.c3", "a.c4", "a.c5"].iter().enumerate() {
        let err = max_relative_error(&c[i], &outputs[*name]);
        assert!(err <= 1e-4, "{name}: {err:.3e}");
    }
}
