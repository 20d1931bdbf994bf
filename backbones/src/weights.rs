//! Weights by torchvision's state-dict names, from `.safetensors` or PyTorch zip `.pth`
//! (read by `candle_core::pickle`, which interprets only tensor-rebuild calls: no code runs).
//!
//! Flow: [`WeightMap::load`] reads every tensor; [`WeightMap::to_detector_names`] renames them
//! to a detector's state dict (ImageNet `layer1.0.conv2.weight` → `backbone.body.layer1.0.conv2.weight`,
//! old FPN `inner_blocks.0.weight` → `inner_blocks.0.0.weight`, `fc.*` ignored);
//! [`CheckedWeights`] serves them through a `VarBuilder`, failing on a missing tensor or a
//! wrong shape (naming key, expected and found shape) and recording which keys were used, so
//! the caller can list the unused ones. The same map serves a whole detector (`rpn.*`, `roi_heads.*`).
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use crate::error::BackboneError;

/// Tensors by name, plus the names deliberately dropped (`fc.*`, `num_batches_tracked`).
#[derive(Debug, Clone, Default)]
pub struct WeightMap {
    tensors: HashMap<String, Tensor>,
    ignored: Vec<String>,
}

/// Keys under which training scripts nest a state dict (`torch.save({"model": sd})`).
const NESTING_KEYS: [&str; 2] = ["model", "state_dict"];

impl WeightMap {
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        Self {
            tensors,
            ignored: Vec::new(),
        }
    }

    /// Reads a `.safetensors` file, or else a zip-format `torch.save` file (a state dict at the
    /// top level or nested under `model` / `state_dict`).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, BackboneError> {
        let path = path.as_ref();
        let read_err = |e: candle_core::Error| BackboneError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if path.extension().is_some_and(|e| e == "safetensors") {
            let tensors = candle_core::safetensors::load(path, device).map_err(read_err)?;
            return Ok(Self::new(tensors));
        }
        let mut pairs = candle_core::pickle::read_all(path).map_err(read_err)?;
        for key in NESTING_KEYS {
            if !pairs.is_empty() {
                break;
            }
            pairs = candle_core::pickle::read_all_with_key(path, Some(key)).unwrap_or_default();
        }
        if pairs.is_empty() {
            return Err(BackboneError::Empty {
                path: path.display().to_string(),
                hint: NESTING_KEYS.join(", "),
            });
        }
        let tensors = pairs
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(device)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(read_err)?;
        Ok(Self::new(tensors))
    }

    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.tensors
    }

    /// Names dropped on purpose by [`Self::to_detector_names`], sorted.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Renames to a detector's state dict:
    /// - an ImageNet classifier (`conv1.weight`, `layer1.*`): prefixed `backbone.body.`, its
    ///   `fc.*` ignored;
    /// - a `BackboneWithFPN` state dict (`body.*`, `fpn.*`): prefixed `backbone.`;
    /// - a detector (`backbone.*`, `rpn.*`, `roi_heads.*`): kept.
    ///
    /// Then old-style FPN keys (`fpn.inner_blocks.{i}.weight`, torchvision < 0.13) become
    /// `fpn.inner_blocks.{i}.0.weight` (same for `layer_blocks`), and BN
    /// `num_batches_tracked` counters are ignored.
    pub fn to_detector_names(self) -> Self {
        let keys: Vec<&String> = self.tensors.keys().collect();
        let is_detector = keys.iter().any(|k| k.starts_with("backbone."));
        let is_backbone = keys
            .iter()
            .any(|k| k.starts_with("body.") || k.starts_with("fpn."));
        let mut ignored = self.ignored;
        let mut tensors = HashMap::with_capacity(self.tensors.len());
        for (key, t) in self.tensors {
            let renamed = if is_detector {
                key.clone()
            } else if is_backbone {
                format!("backbone.{key}")
            } else if key.starts_with("fc.") {
                ignored.push(key);
                continue;
            } else {
                format!("backbone.body.{key}")
            };
            if key.ends_with("num_batches_tracked") {
                ignored.push(key);
                continue;
            }
            tensors.insert(new_fpn_spelling(&renamed), t);
        }
        ignored.sort();
        Self { tensors, ignored }
    }
}

/// `...fpn.inner_blocks.3.bias` → `...fpn.inner_blocks.3.0.bias` (and `layer_blocks`);
/// other keys unchanged.
fn new_fpn_spelling(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let n = parts.len();
    let old = n >= 4
        && parts[n - 4] == "fpn"
        && matches!(parts[n - 3], "inner_blocks" | "layer_blocks")
        && parts[n - 2].parse::<usize>().is_ok()
        && matches!(parts[n - 1], "weight" | "bias");
    if !old {
        return key.to_string();
    }
    let head = parts[..n - 1].join(".");
    format!("{head}.0.{}", parts[n - 1])
}

/// A `VarBuilder` backend over a [`WeightMap`] that checks every request's shape and records
/// which keys were used. A missing key is an error, except under the prefixes given to
/// [`Self::new`], where it is initialised from the request's init hint (e.g. a fresh FPN on
/// ImageNet weights) and recorded as such. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CheckedWeights {
    inner: Arc<Inner>,
}

struct Inner {
    tensors: HashMap<String, Tensor>,
    initialise_under: Vec<String>,
    used: Mutex<BTreeSet<String>>,
    initialised: Mutex<BTreeSet<String>>,
}

impl CheckedWeights {
    /// `initialise_missing_under`: key prefixes whose missing tensors are initialised instead
    /// of failing (`&[]` = strict; `&["backbone.fpn."]` for ImageNet weights + a fresh FPN).
    pub fn new(map: WeightMap, initialise_missing_under: &[&str]) -> Self {
        Self {
            inner: Arc::new(Inner {
                tensors: map.tensors,
                initialise_under: initialise_missing_under
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                used: Mutex::default(),
                initialised: Mutex::default(),
            }),
        }
    }

    /// A `VarBuilder` over these weights (tensors converted to `dtype` on `device`).
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// Keys never requested, sorted: report them (they usually mean a naming mismatch).
    pub fn unused_keys(&self) -> Vec<String> {
        let used = lock(&self.inner.used);
        let mut unused: Vec<String> = self
            .inner
            .tensors
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect();
        unused.sort();
        unused
    }

    /// Keys that were missing and initialised from their hint, sorted.
    pub fn initialised_keys(&self) -> Vec<String> {
        lock(&self.inner.initialised).iter().cloned().collect()
    }
}

fn lock(m: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimpleBackend for CheckedWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        match self.inner.tensors.get(name) {
            Some(t) if t.shape() != &s => Err(BackboneError::ShapeMismatch {
                key: name.to_string(),
                expected: s,
                found: t.shape().clone(),
            }
            .into_candle()),
            Some(t) => {
                lock(&self.inner.used).insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)
            }
            None if self
                .inner
                .initialise_under
                .iter()
                .any(|p| name.starts_with(p.as_str())) =>
            {
                lock(&self.inner.initialised).insert(name.to_string());
                Ok(h.var(s, dtype, dev)?.as_tensor().detach())
            }
            None => Err(BackboneError::MissingTensor {
                key: name.to_string(),
                expected: s,
            }
            .into_candle()),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match self.inner.tensors.get(name) {
            Some(t) => {
                lock(&self.inner.used).insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)
            }
            None => Err(BackboneError::MissingTensor {
                key: name.to_string(),
                expected: Shape::from(()),
            }
            .into_candle()),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests;
