//! A randomly initialised detector, the same for the same seed: for `detect export
//! --random-init` (latency benchmarks of architectures without trained weights) and for test
//! fixtures. Weights follow torchvision's initialisation (seeded per name by
//! [`crate::weights::params::Params`]); the FrozenBatchNorm buffers, which torchvision leaves
//! at the identity, are drawn at random too so that BN folding is exercised.
use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::FasterRcnn;
use crate::weights::params::Params;

/// Every weight of a `config` detector (torchvision state-dict names), seeded by `seed`.
pub fn random_detector_weights(
    config: &DetectorConfig,
    seed: u64,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let params = Params::new(HashMap::new(), |_| false, seed);
    FasterRcnn::new(config, params.var_builder(DType::F32, &Device::Cpu))
        .context("building a randomly initialised detector")?;
    let state: BTreeMap<String, Tensor> = params.state_dict();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::with_capacity(state.len());
    for (name, tensor) in state {
        let n = tensor.elem_count();
        let bn = is_batch_norm(&name);
        // Positive scales (variance, BN weight) near 1; offsets (mean, BN bias) near 0.
        let scale = name.ends_with("running_var") || (bn && name.ends_with(".weight"));
        let offset = name.ends_with("running_mean") || (bn && name.ends_with(".bias"));
        let values: Option<Vec<f32>> = if scale {
            Some(sample(&mut rng, n, Uniform::new(0.5, 1.5)?))
        } else if offset {
            Some(sample(&mut rng, n, Normal::new(0.0, 0.1)?))
        } else {
            None
        };
        let tensor = match values {
            Some(v) => Tensor::from_vec(v, tensor.shape(), &Device::Cpu)?,
            None => tensor,
        };
        out.insert(name, tensor);
    }
    Ok(out)
}

/// A FrozenBatchNorm parameter of the body (`bn1`, `bn2`, `bn3`, `downsample.1`).
fn is_batch_norm(name: &str) -> bool {
    name.contains(".bn") || name.contains("downsample.1.")
}

fn sample(rng: &mut ChaCha8Rng, n: usize, dist: impl Distribution<f32>) -> Vec<f32> {
    (0..n).map(|_| dist.sample(rng)).collect()
}
