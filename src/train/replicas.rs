//! The start of a data-parallel run: every rank must train the same run from the same weights.
//! Rank 0's resolved config is compared on every rank (a node started with other options is
//! refused, naming the settings); with `--resume`, rank 0 (which reads the checkpoint) sends
//! the trainable weights, the momentum and the iteration to the others; then every rank checks
//! that its weights hash to rank 0's.
use std::collections::HashMap;

use anyhow::Context;
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use crate::train::dist::Collective;
use crate::train::run_config::SAME_RUN_KEYS;
use crate::train::solver::Sgd;
use crate::weights::params::Params;

/// Every rank's resolved config must equal rank 0's on the keys a resumed run must keep.
pub fn check_same_config(
    collective: &mut dyn Collective,
    config: &serde_json::Value,
) -> anyhow::Result<()> {
    let theirs = collective.broadcast(config.to_string().as_bytes())?;
    let theirs: serde_json::Value =
        serde_json::from_slice(&theirs).context("reading rank 0's config")?;
    let differ: Vec<&str> = SAME_RUN_KEYS
        .into_iter()
        .filter(|k| theirs.get(k) != config.get(k))
        .collect();
    anyhow::ensure!(
        differ.is_empty(),
        "rank {}'s run differs from rank 0's in: {}\nhint: start every worker with the same \
         options",
        collective.rank(),
        differ.join(", ")
    );
    Ok(())
}

/// Rank 0's start (weights and momentum when `resumed`, and `start_iter`) on every rank, then
/// the check that all weights are equal. Returns the start iteration.
pub fn sync_start(
    collective: &mut dyn Collective,
    params: &Params,
    sgd: &mut Sgd,
    start_iter: u64,
    resumed: bool,
) -> anyhow::Result<u64> {
    let start_iter = u64::from_le_bytes(
        collective.broadcast(&start_iter.to_le_bytes())?[..]
            .try_into()
            .context("rank 0 sent a malformed start iteration")?,
    );
    if resumed {
        let mut state: HashMap<String, Tensor> = HashMap::new();
        if collective.rank() == 0 {
            for (name, var) in params.trainable() {
                state.insert(format!("param.{name}"), var.as_tensor().clone());
            }
            for (name, t) in sgd.state() {
                state.insert(format!("momentum.{name}"), t);
            }
        }
        let bytes = if collective.rank() == 0 {
            safetensors::tensor::serialize(&state, None)
                .context("serialising the resumed weights for the other ranks")?
        } else {
            Vec::new()
        };
        let bytes = collective.broadcast(&bytes)?;
        if collective.rank() != 0 {
            let device = params
                .trainable()
                .first()
                .map_or(Device::Cpu, |(_, v)| v.device().clone());
            let state = candle_core::safetensors::load_buffer(&bytes, &device)
                .context("reading rank 0's resumed weights")?;
            let mut momentum = HashMap::new();
            let trainable: HashMap<String, candle_core::Var> =
                params.trainable().into_iter().collect();
            for (key, t) in state {
                if let Some(name) = key.strip_prefix("param.") {
                    let var = trainable.get(name).with_context(|| {
                        format!("rank 0 sent weight `{name}`, not in this model")
                    })?;
                    var.set(&t)?;
                } else if let Some(name) = key.strip_prefix("momentum.") {
                    momentum.insert(name.to_string(), t);
                }
            }
            sgd.load_state(&momentum)?;
        }
    }
    let own = fingerprint(params)?;
    let rank0 = collective.broadcast(&own)?;
    anyhow::ensure!(
        rank0 == own,
        "rank {}'s weights differ from rank 0's at the start of training\nhint: every worker \
         must start from the same weights file and seed",
        collective.rank()
    );
    Ok(start_iter)
}

/// SHA-256 over every weight's name, shape and f32 values, in name order.
fn fingerprint(params: &Params) -> anyhow::Result<Vec<u8>> {
    let mut hash = Sha256::new();
    for (name, t) in params.state_dict() {
        hash.update(name.as_bytes());
        hash.update(format!("{:?}", t.dims()).as_bytes());
        let values = t
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        for v in values {
            hash.update(v.to_le_bytes());
        }
    }
    Ok(hash.finalize().to_vec())
}
