//! Capturing the training state into a [`Checkpoint`] and restoring it, so that a resumed run
//! continues exactly as an uninterrupted one: the same weights (trainable and frozen), the same
//! momentum buffers, and the loop's own iteration and random state.
use std::collections::HashMap;

use crate::train::solver::Sgd;
use crate::weights::params::Params;

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
mod tests;
