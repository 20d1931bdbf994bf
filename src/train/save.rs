//! What a run writes to keep its progress: a checkpoint (weights, momentum, config) with the
//! loss plot refreshed beside it, and the final model. Weights holding a NaN or an infinity are
//! never written, so the last checkpoint stays usable.
use std::collections::BTreeMap;

use candle_core::Tensor;
use serde_json::json;

use crate::train::checkpoint::{save_model, Checkpoint, ModelMeta, MODEL_FINAL};
use crate::train::metrics::read_records;
use crate::train::options::TrainOptions;
use crate::train::plot::PlotError;
use crate::train::run::Run;

impl Run {
    /// Writes the checkpoint of `iteration` and refreshes `loss.png` (a failed plot is a
    /// warning). An error, and nothing written, when a weight is non-finite.
    pub fn save_checkpoint(&self, options: &TrainOptions, iteration: u64) -> anyhow::Result<()> {
        let model = self.params.state_dict();
        // A step with a finite loss can still overflow the weights: never checkpoint those.
        if let Some(name) = first_non_finite(&model)? {
            anyhow::bail!(
                "weight `{name}` is non-finite after iteration {iteration}; training stopped \
                 before saving, the last checkpoint is intact\nhint: lower the learning rate \
                 (--lr) or clip gradients (--clip-grad-norm)"
            );
        }
        self.checkpointer.save(&Checkpoint {
            iteration,
            model,
            momentum: self.sgd.state(),
            rng_state: json!({ "seed": options.seed, "iteration": iteration }),
            config: self.config.clone(),
        })?;
        let plotted = read_records(&self.metrics_path)
            .map_err(anyhow::Error::from)
            .and_then(|r| {
                let plot = options.output.join("loss.png");
                crate::train::plot::plot_losses(&r, &plot, &options.dataset.name())
                    .map_err(anyhow::Error::from)
            });
        match plotted {
            // A checkpoint before the first logged iteration: nothing to draw yet.
            Err(e) if matches!(e.downcast_ref(), Some(PlotError::Empty(_))) => {}
            Err(e) => eprintln!("warning: loss.png not updated: {e:#}"),
            Ok(()) => {}
        }
        Ok(())
    }

    /// Writes `model_final.safetensors` (weights, class names and config) to the output folder.
    pub fn save_final(&self, options: &TrainOptions) -> anyhow::Result<()> {
        let final_path = options.output.join(MODEL_FINAL);
        let meta = ModelMeta {
            class_names: self.map.entries().iter().map(|e| e.name.clone()).collect(),
            config: self.config.clone(),
        };
        save_model(&final_path, &self.params.state_dict(), &meta)?;
        eprintln!("wrote {}", final_path.display());
        Ok(())
    }
}

/// The first tensor (by name) holding a NaN or an infinity.
fn first_non_finite(tensors: &BTreeMap<String, Tensor>) -> anyhow::Result<Option<String>> {
    for (name, t) in tensors {
        if !t.dtype().is_float() {
            continue;
        }
        // The sum of x * 0 is NaN exactly when some x is NaN or infinite.
        let s: f32 = t
            .affine(0.0, 0.0)?
            .sum_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_scalar()?;
        if !s.is_finite() {
            return Ok(Some(name.clone()));
        }
    }
    Ok(None)
}
