//! Capturing the training state into a [`Checkpoint`] and restoring it, so that a resumed run
//! continues exactly as an uninterrupted one: the same weights (trainable and frozen), the same
//! momentum buffers, and the loop's own iteration and random state.
use std::collections::HashMap;

use crate::params::Params;
use crate::solver::Sgd;

use super::Checkpoint;

impl Checkpoint {
    /// The state after `iteration` completed iterations.
    pub fn capture(
        iteration: u64,
        params: &Params,
        sgd: &Sgd,
        rng_state: serde_json::Value,
        config: serde_json::Value,
    ) -> Self {
        Self {
            iteration,
            model: params.state_dict(),
            momentum: sgd.state(),
            rng_state,
            config,
        }
    }

    /// A parameter store answering from the checkpoint's weights only (a weight the checkpoint
    /// lacks is an error): build the model over it to resume, then [`Checkpoint::restore`].
    pub fn params(&self, is_trainable: impl Fn(&str) -> bool + Send + Sync + 'static) -> Params {
        let loaded = self
            .model
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        Params::new(loaded, is_trainable, 0).require_loaded()
    }

    /// Writes the checkpoint's trainable weights into `params` (checking that the frozen ones
    /// are equal) and its momentum buffers into `sgd`. Every weight of the model must be in the
    /// checkpoint.
    pub fn restore(&self, params: &Params, sgd: &mut Sgd) -> anyhow::Result<()> {
        let model: HashMap<String, candle_core::Tensor> = self
            .model
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let missing = params.assign(&model)?;
        if !missing.is_empty() {
            anyhow::bail!(
                "the checkpoint of iteration {} lacks {} weights of this model: {}",
                self.iteration,
                missing.len(),
                missing.join(", ")
            );
        }
        let momentum = self
            .momentum
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        sgd.load_state(&momentum)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::init::Init;
    use serde_json::json;

    use super::*;
    use crate::checkpoint::Checkpointer;

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
}
