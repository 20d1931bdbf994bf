use candle_core::{DType, Device, Tensor};
use candle_nn::init::Init;
use serde_json::json;

use super::*;
use crate::train::checkpoint::Checkpointer;

fn trainable(name: &str) -> bool {
    name != "frozen"
}

/// A two-weight "model": loss = sum((w · frozen − target)²).
fn build(seed: u64) -> anyhow::Result<(Params, Tensor, Tensor)> {
    model(Params::new(HashMap::new(), trainable, seed))
}

fn model(params: Params) -> anyhow::Result<(Params, Tensor, Tensor)> {
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let init = Init::Randn {
        mean: 0.0,
        stdev: 1.0,
    };
    let w = vb.get_with_hints(8, "w", init)?;
    let frozen = vb.get_with_hints(8, "frozen", init)?;
    Ok((params, w, frozen))
}

fn train(
    w: &Tensor,
    frozen: &Tensor,
    sgd: &mut Sgd,
    its: std::ops::Range<u64>,
) -> anyhow::Result<Vec<f32>> {
    let target = Tensor::arange(0f32, 8.0, &Device::Cpu)?;
    let mut losses = Vec::new();
    for it in its {
        let loss = (w * frozen)?.sub(&target)?.sqr()?.sum_all()?;
        losses.push(loss.to_scalar::<f32>()?);
        sgd.step(&loss.backward()?, 0.01 * (1.0 + it as f64))?;
    }
    Ok(losses)
}

#[test]
fn resumed_run_continues_bit_exactly() -> anyhow::Result<()> {
    // Uninterrupted: 6 iterations.
    let (params, w, frozen) = build(5)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    let straight = train(&w, &frozen, &mut sgd, 0..6)?;

    // Interrupted after 3, checkpointed, rebuilt from the checkpoint, restored.
    let dir = tempfile::tempdir()?;
    let (params, w, frozen) = build(5)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    let mut resumed = train(&w, &frozen, &mut sgd, 0..3)?;
    let saver = Checkpointer::new(dir.path(), 1);
    saver.save(&Checkpoint::capture(
        3,
        &params,
        &sgd,
        json!({"seed": 5}),
        json!({}),
    ))?;
    let ckpt = saver.load_last(&Device::Cpu)?.expect("saved above");
    let (params, w, frozen) = model(ckpt.params(trainable))?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    ckpt.restore(&params, &mut sgd)?;
    resumed.extend(train(&w, &frozen, &mut sgd, ckpt.iteration..6)?);
    assert_eq!(resumed, straight);
    // A model built from another seed has other frozen weights: refused, not half-restored.
    let (params, _, _) = build(99)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    let err = ckpt.restore(&params, &mut sgd).unwrap_err().to_string();
    assert!(err.contains("frozen weight `frozen` differs"), "{err}");
    Ok(())
}

#[test]
fn restoring_into_another_model_names_the_missing_weights() -> anyhow::Result<()> {
    let (params, _, _) = build(0)?;
    let sgd = Sgd::new(params.trainable(), 0.9, 0.0)?;
    let mut ckpt = Checkpoint::capture(1, &params, &sgd, json!(null), json!(null));
    ckpt.model.remove("frozen");
    let mut sgd = Sgd::new(params.trainable(), 0.9, 0.0)?;
    let err = ckpt.restore(&params, &mut sgd).unwrap_err().to_string();
    assert!(
        err.contains("lacks 1 weights") && err.contains("frozen"),
        "{err}"
    );
    Ok(())
}
