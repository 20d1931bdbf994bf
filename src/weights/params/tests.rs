use super::*;
use candle_nn::init::{FanInOut, NonLinearity, DEFAULT_KAIMING_UNIFORM};

fn cpu() -> Device {
    Device::Cpu
}

fn frozen_if_layer0(name: &str) -> bool {
    !name.contains("layer0")
}

#[test]
fn trainable_weights_are_vars_in_name_order_frozen_are_plain() -> anyhow::Result<()> {
    let params = Params::new(HashMap::new(), frozen_if_layer0, 7);
    let vb = params.var_builder(DType::F32, &cpu());
    let b = vb.get_with_hints((3, 2), "layer1.b.weight", Init::Const(1.0))?;
    let a = vb
        .pp("layer1")
        .get_with_hints(4, "a.weight", Init::Const(2.0))?;
    let f = vb.get_with_hints(4, "layer0.bn.running_var", Init::Const(1.0))?;
    assert!(a.is_variable() && b.is_variable());
    assert!(!f.is_variable());
    let names: Vec<String> = params.trainable().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["layer1.a.weight", "layer1.b.weight"]);
    let all: Vec<String> = params.state_dict().into_keys().collect();
    assert_eq!(
        all,
        [
            "layer0.bn.running_var",
            "layer1.a.weight",
            "layer1.b.weight"
        ]
    );
    Ok(())
}

#[test]
fn gradients_reach_trainable_weights_only() -> anyhow::Result<()> {
    let params = Params::new(HashMap::new(), frozen_if_layer0, 0);
    let vb = params.var_builder(DType::F32, &cpu());
    let w = vb.get_with_hints(3, "layer1.w", Init::Const(2.0))?;
    let f = vb.get_with_hints(3, "layer0.f", Init::Const(5.0))?;
    // A frozen layer's computation (here `2·f`) records no autograd op, so the backward walk
    // stops at its output and never reaches the frozen weight itself.
    let frozen_out = f.affine(2.0, 0.0)?;
    let loss = (&w * &frozen_out)?.sum_all()?;
    let grads = loss.backward()?;
    let gw = grads.get(&w).expect("trainable weight has a gradient");
    assert_eq!(gw.to_vec1::<f32>()?, [10.0, 10.0, 10.0]);
    assert!(
        grads.get(&f).is_none(),
        "frozen weight must not get a gradient"
    );
    assert!(params.trainable().iter().all(|(n, _)| n != "layer0.f"));
    Ok(())
}

#[test]
fn loaded_weights_are_copied_and_unused_keys_listed() -> anyhow::Result<()> {
    let loaded: HashMap<String, Tensor> = [
        (
            "layer1.w".to_string(),
            Tensor::new(&[1f32, 2., 3.], &cpu())?,
        ),
        (
            "fc.weight".to_string(),
            Tensor::zeros((2, 2), DType::F32, &cpu())?,
        ),
        ("fc.bias".to_string(), Tensor::zeros(2, DType::F32, &cpu())?),
    ]
    .into_iter()
    .collect();
    let source = loaded["layer1.w"].clone();
    let params = Params::new(loaded, |_| true, 0);
    let vb = params.var_builder(DType::F32, &cpu());
    let w = vb.get_with_hints(3, "layer1.w", Init::Const(0.0))?;
    assert_eq!(w.to_vec1::<f32>()?, [1.0, 2.0, 3.0]);
    // Updating the Var must not write through to the loaded tensor.
    params.trainable()[0]
        .1
        .set(&Tensor::new(&[9f32, 9., 9.], &cpu())?)?;
    assert_eq!(source.to_vec1::<f32>()?, [1.0, 2.0, 3.0]);
    assert_eq!(params.unused_keys(), ["fc.bias", "fc.weight"]);
    vb.get_with_hints(2, "head.bias", Init::Const(0.0))?;
    assert_eq!(params.initialised_keys(), ["head.bias"]);
    Ok(())
}

#[test]
fn shape_mismatch_names_key_and_both_shapes() -> anyhow::Result<()> {
    let loaded: HashMap<String, Tensor> = [(
        "conv1.weight".to_string(),
        Tensor::zeros((8, 3, 7, 7), DType::F32, &cpu())?,
    )]
    .into_iter()
    .collect();
    let params = Params::new(loaded, |_| true, 0);
    let vb = params.var_builder(DType::F32, &cpu());
    let err = vb
        .get_with_hints((64, 3, 7, 7), "conv1.weight", DEFAULT_KAIMING_UNIFORM)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv1.weight"), "{err}");
    assert!(
        err.contains("[64, 3, 7, 7]") && err.contains("[8, 3, 7, 7]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn repeated_request_returns_the_same_var() -> anyhow::Result<()> {
    let params = Params::new(HashMap::new(), |_| true, 0);
    let vb = params.var_builder(DType::F32, &cpu());
    let a = vb.get_with_hints(2, "shared", Init::Const(1.0))?;
    let b = vb.get_with_hints(2, "shared", Init::Const(3.0))?;
    assert_eq!(a.id(), b.id());
    assert_eq!(params.trainable().len(), 1);
    let err = vb
        .get_with_hints(3, "shared", Init::Const(1.0))
        .unwrap_err();
    assert!(err.to_string().contains("[2] then [3]"), "{err}");
    Ok(())
}

#[test]
fn initialisation_depends_on_seed_and_name_not_request_order() -> anyhow::Result<()> {
    let init = Init::Randn {
        mean: 0.0,
        stdev: 0.01,
    };
    let draw = |seed: u64, order: &[&str]| -> anyhow::Result<HashMap<String, Vec<f32>>> {
        let params = Params::new(HashMap::new(), |_| true, seed);
        let vb = params.var_builder(DType::F32, &cpu());
        let mut out = HashMap::new();
        for name in order {
            out.insert(
                name.to_string(),
                vb.get_with_hints(16, name, init)?.to_vec1()?,
            );
        }
        Ok(out)
    };
    let ab = draw(1, &["a", "b"])?;
    let ba = draw(1, &["b", "a"])?;
    assert_eq!(ab, ba);
    assert_ne!(ab["a"], ab["b"]);
    assert_ne!(draw(2, &["a"])?["a"], ab["a"]);
    Ok(())
}

#[test]
fn kaiming_uniform_matches_torch_bound_and_spread() -> anyhow::Result<()> {
    // torch.nn.init.kaiming_uniform_(w, a=1): gain 1, bound = sqrt(3 / fan_in); this is the
    // hint torchvision's convs use via `nn.init.kaiming_uniform_(.., a=1)` in FPN.
    let init = Init::Kaiming {
        dist: NormalOrUniform::Uniform,
        fan: FanInOut::FanIn,
        non_linearity: NonLinearity::ExplicitGain(1.0),
    };
    let params = Params::new(HashMap::new(), |_| true, 3);
    let vb = params.var_builder(DType::F32, &cpu());
    let w = vb.get_with_hints((256, 64, 3, 3), "w", init)?;
    let values = w.flatten_all()?.to_vec1::<f32>()?;
    let bound = (3.0f64 / (64.0 * 9.0)).sqrt();
    let max = values.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    assert!(max <= bound * (1.0 + 1e-6), "max {max} > bound {bound}");
    // The uniform's std is bound/sqrt(3); with 147k samples its estimate is within 1%.
    let n = values.len() as f64;
    let std = (values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt();
    let expected = bound / 3f64.sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.01,
        "std {std} vs {expected}"
    );
    Ok(())
}

#[test]
fn assign_overwrites_trainable_checks_frozen_and_reports_missing() -> anyhow::Result<()> {
    let params = Params::new(HashMap::new(), frozen_if_layer0, 0);
    let vb = params.var_builder(DType::F32, &cpu());
    let w = vb.get_with_hints(2, "layer1.w", Init::Const(0.0))?;
    vb.get_with_hints(2, "layer0.f", Init::Const(3.0))?;
    vb.get_with_hints(2, "layer1.other", Init::Const(0.0))?;
    let mut new: HashMap<String, Tensor> = [
        ("layer1.w".to_string(), Tensor::new(&[1f32, 2.], &cpu())?),
        ("layer0.f".to_string(), Tensor::new(&[3f32, 3.], &cpu())?),
    ]
    .into_iter()
    .collect();
    let missing = params.assign(&new)?;
    assert_eq!(missing, ["layer1.other"]);
    // The model's own handle sees the new value (same storage as the Var).
    assert_eq!(w.to_vec1::<f32>()?, [1.0, 2.0]);
    // Assigning a store's own state dict back is a no-op, not an aliasing error.
    params.assign(&params.state_dict().into_iter().collect())?;
    assert_eq!(w.to_vec1::<f32>()?, [1.0, 2.0]);
    new.insert("layer0.f".to_string(), Tensor::new(&[3f32, 4.], &cpu())?);
    let err = params.assign(&new).unwrap_err().to_string();
    assert!(err.contains("frozen weight `layer0.f` differs"), "{err}");
    let bad: HashMap<String, Tensor> = [(
        "layer1.w".to_string(),
        Tensor::zeros(3, DType::F32, &cpu())?,
    )]
    .into_iter()
    .collect();
    let err = params.assign(&bad).unwrap_err().to_string();
    assert!(
        err.contains("layer1.w") && err.contains("[2]") && err.contains("[3]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn reads_safetensors_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    let t = Tensor::new(&[[1f32, 2.], [3., 4.]], &cpu())?;
    candle_core::safetensors::save(&HashMap::from([("conv.weight", t)]), &path)?;
    let read = read_tensor_file(&path, &cpu())?;
    assert_eq!(
        read["conv.weight"].to_vec2::<f32>()?,
        [[1.0, 2.0], [3.0, 4.0]]
    );
    let err = read_tensor_file(&dir.path().join("w.bin"), &cpu()).unwrap_err();
    assert!(err.to_string().contains("w.bin"), "{err}");
    Ok(())
}

#[test]
fn require_loaded_rejects_weights_missing_from_the_file() -> anyhow::Result<()> {
    let loaded: HashMap<String, Tensor> = [("a".to_string(), Tensor::new(&[1f32], &cpu())?)]
        .into_iter()
        .collect();
    let params = Params::new(loaded, |_| false, 0).require_loaded();
    let vb = params.var_builder(DType::F32, &cpu());
    assert_eq!(
        vb.get_with_hints(1, "a", Init::Const(0.0))?
            .to_vec1::<f32>()?,
        [1.0]
    );
    let err = vb
        .get_with_hints(1, "b", Init::Const(0.0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`b`") && err.contains("not in the loaded file"),
        "{err}"
    );
    Ok(())
}
