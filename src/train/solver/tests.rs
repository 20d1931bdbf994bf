use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use serde::Deserialize;

use super::*;

/// Written by `tests/fixtures/solver/gen.py` (torch.optim.SGD, LambdaLR with detectron2's
/// warm-up/multi-step factor, torch's LinearLR+MultiStepLR chain, clip_grad_norm_).
const FIXTURE: &str = include_str!("../../../tests/fixtures/solver/sgd.json");

#[derive(Deserialize)]
struct Fixture {
    base_lr: f64,
    momentum: f64,
    weight_decay: f64,
    warmup_iters: u64,
    warmup_factor: f64,
    steps: Vec<u64>,
    gamma: f64,
    shapes: HashMap<String, Vec<usize>>,
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    clip_grad_norm: Option<f64>,
    params: HashMap<String, Vec<f32>>,
    grads: Vec<HashMap<String, Vec<f32>>>,
    lrs: Vec<f64>,
    chained_lrs: Vec<f64>,
    after: Vec<HashMap<String, Vec<f32>>>,
    total_norms: Vec<f64>,
}

/// A `GradStore` holding exactly `g` for each `(var, g)` (`GradStore::new` is private): the
/// gradient of Σ sum(var · g) with respect to `var` is `1 · g`, computed without rounding.
fn grad_store(given: &[(Var, Tensor)]) -> candle_core::Result<GradStore> {
    let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;
    for (var, g) in given {
        loss = (loss + (var.as_tensor() * g)?.sum_all()?.to_dtype(DType::F32)?)?;
    }
    loss.backward()
}

fn fixture_config(f: &Fixture, clip: Option<f64>) -> SolverConfig {
    SolverConfig {
        base_lr: f.base_lr,
        momentum: f.momentum,
        weight_decay: f.weight_decay,
        max_iter: 100,
        steps: f.steps.clone(),
        gamma: f.gamma,
        warmup_iters: f.warmup_iters,
        warmup_factor: f.warmup_factor,
        clip_grad_norm: clip,
    }
}

#[test]
fn sgd_schedule_and_clipping_match_torch() -> anyhow::Result<()> {
    let f: Fixture = serde_json::from_str(FIXTURE)?;
    let dev = Device::Cpu;
    // f32 takes the fused in-place CPU update; f64 the tensor-op path other devices use (f64
    // arithmetic differs from torch's f32 by ~1e-7 relative, inside the same tolerance).
    let cases = f
        .runs
        .iter()
        .flat_map(|r| [(r, DType::F32), (r, DType::F64)]);
    for (run, dtype) in cases {
        let config = fixture_config(&f, run.clip_grad_norm);
        config.validate()?;
        let vars: Vec<(String, Var)> = run
            .params
            .iter()
            .map(|(n, v)| {
                let t =
                    Tensor::from_vec(v.clone(), f.shapes[n].as_slice(), &dev)?.to_dtype(dtype)?;
                Ok((n.clone(), Var::from_tensor(&t)?))
            })
            .collect::<candle_core::Result<_>>()?;
        let mut sgd = Sgd::new(vars, config.momentum, config.weight_decay)?;
        for (it, grads_at) in run.grads.iter().enumerate() {
            let lr = config.lr_at(it as u64);
            // The schedule is the same f64 expression as the LambdaLR lambda: bit-equal.
            assert_eq!(lr, run.lrs[it], "LR at iteration {it}");
            // torch's chained LinearLR+MultiStepLR computes the same curve recursively.
            assert!(
                (lr / run.chained_lrs[it] - 1.0).abs() < 1e-12,
                "chained LR at {it}"
            );
            let mut given = Vec::new();
            for (name, var) in sgd.params() {
                if let Some(g) = grads_at.get(name) {
                    let g = Tensor::from_vec(g.clone(), var.shape(), &dev)?.to_dtype(dtype)?;
                    given.push((var.clone(), g));
                }
            }
            let mut grads = grad_store(&given)?;
            if let Some(max_norm) = config.clip_grad_norm {
                let norm = clip_grad_norm(sgd.params(), &mut grads, max_norm)?;
                let expected = run.total_norms[it];
                assert!(
                    (norm - expected).abs() <= 1e-5 * expected,
                    "norm {norm} vs {expected}"
                );
            }
            sgd.step(&grads, lr)?;
            for (name, var) in sgd.params() {
                let got = var
                    .as_tensor()
                    .flatten_all()?
                    .to_dtype(DType::F32)?
                    .to_vec1::<f32>()?;
                let want = &run.after[it][name];
                // f32 updates; torch fuses `a + alpha*b` (one rounding) where we round twice.
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() <= 1e-6,
                        "{dtype:?} {name} at step {it}: {g} vs {w}"
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn lr_schedule_follows_the_recipe() {
    let c = SolverConfig::default();
    assert_eq!(
        (c.max_iter, c.steps.clone()),
        (90_000, vec![60_000, 80_000])
    );
    assert_eq!(c.lr_at(0), 0.02 * 0.001);
    assert!((c.lr_at(500) - 0.02 * 0.5005).abs() < 1e-15);
    assert_eq!(c.lr_at(1000), 0.02);
    assert_eq!(c.lr_at(59_999), 0.02);
    assert!((c.lr_at(60_000) - 0.002).abs() < 1e-15);
    assert!((c.lr_at(80_000) - 0.0002).abs() < 1e-15);
}

#[test]
fn schedules_scale_with_batch_size() -> anyhow::Result<()> {
    let c = SolverConfig::for_schedule("1x".parse()?, 2)?;
    assert_eq!(
        (c.max_iter, c.steps.clone()),
        (720_000, vec![480_000, 640_000])
    );
    assert!((c.base_lr - 0.0025).abs() < 1e-15);
    let c = SolverConfig::for_schedule(Schedule::ThreeX, 32)?;
    assert_eq!(
        (c.max_iter, c.steps.clone()),
        (135_000, vec![105_000, 125_000])
    );
    assert!((c.base_lr - 0.04).abs() < 1e-15);
    assert_eq!(
        "2x".parse::<Schedule>(),
        Err(SolverError::UnknownSchedule("2x".into()))
    );
    Ok(())
}

#[test]
fn explicit_iters_and_bad_steps() {
    let c = SolverConfig::with_iters(900, None, 4).unwrap();
    assert_eq!(c.steps, [600, 800]);
    let c = SolverConfig::with_iters(1, None, 4).unwrap();
    assert!(c.steps.is_empty());
    let err = SolverConfig::with_iters(100, Some(vec![50, 40]), 4).unwrap_err();
    assert_eq!(
        err,
        SolverError::BadSteps {
            steps: vec![50, 40],
            max_iter: 100
        }
    );
    assert!(SolverConfig::with_iters(100, Some(vec![100]), 4).is_err());
    assert_eq!(
        SolverConfig::with_iters(0, None, 4).unwrap_err(),
        SolverError::ZeroIters(0)
    );
    assert_eq!(
        SolverConfig::with_iters(10, None, 0).unwrap_err(),
        SolverError::ZeroBatch(0)
    );
}

#[test]
fn sgd_orders_by_name_and_round_trips_state() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let var = |v: &[f32]| Var::from_tensor(&Tensor::new(v, &dev).unwrap()).unwrap();
    let params = vec![
        ("z".to_string(), var(&[1.0, 2.0])),
        ("a".to_string(), var(&[3.0])),
    ];
    let mut sgd = Sgd::new(params.clone(), 0.9, 0.0)?;
    let names: Vec<&str> = sgd.params().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "z"]);
    let grads = grad_store(&[(params[0].1.clone(), Tensor::new(&[1f32, 1.0], &dev)?)])?;
    sgd.step(&grads, 0.5)?;
    let state = sgd.state();
    assert_eq!(state.keys().collect::<Vec<_>>(), ["z"]); // "a" had no gradient
                                                         // A fresh optimizer loaded with the state continues exactly like the original.
    let mut resumed = Sgd::new(params.clone(), 0.9, 0.0)?;
    resumed.load_state(&state.clone().into_iter().collect())?;
    let before = params[0].1.as_tensor().to_vec1::<f32>()?;
    sgd.step(&grads, 0.5)?;
    let after_original = params[0].1.as_tensor().to_vec1::<f32>()?;
    params[0].1.set(&Tensor::new(before.as_slice(), &dev)?)?;
    resumed.step(&grads, 0.5)?;
    assert_eq!(params[0].1.as_tensor().to_vec1::<f32>()?, after_original);
    // buf = 0.9*1 + 1 = 1.9; p = 0.5 - 0.5*1.9
    assert_eq!(after_original, [0.5 - 0.95, 1.5 - 0.95]);
    let bad: HashMap<String, Tensor> = [("nope".to_string(), Tensor::new(&[1f32], &dev)?)].into();
    assert!(resumed
        .load_state(&bad)
        .unwrap_err()
        .to_string()
        .contains("nope"));
    assert!(Sgd::new(vec![params[0].clone(), params[0].clone()], 0.9, 0.0).is_err());
    Ok(())
}

#[test]
fn clipping_leaves_small_gradients_alone() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let v = Var::from_tensor(&Tensor::new(&[0f32, 0.0], &dev)?)?;
    let params = vec![("w".to_string(), v.clone())];
    let mut grads = grad_store(&[(v.clone(), Tensor::new(&[3f32, 4.0], &dev)?)])?;
    assert_eq!(clip_grad_norm(&params, &mut grads, 10.0)?, 5.0);
    assert_eq!(
        grads.get(v.as_tensor()).unwrap().to_vec1::<f32>()?,
        [3.0, 4.0]
    );
    clip_grad_norm(&params, &mut grads, 1.0)?;
    let g = grads.get(v.as_tensor()).unwrap().to_vec1::<f32>()?;
    assert!(
        (g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6,
        "{g:?}"
    );
    Ok(())
}
