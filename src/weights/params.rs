//! The parameter store behind every `VarBuilder` the model sees during training.
//!
//! The model asks for each weight by its torchvision state-dict name with
//! `vb.get_with_hints(shape, name, init)`. [`Params`] answers from (a) tensors loaded from a file
//! (ImageNet backbone weights or a whole detector), falling back to (b) the `Init` hint drawn
//! from a generator seeded by `(seed, name)`, and decides by a caller-given predicate whether the
//! weight is trainable:
//! - trainable → a [`Var`] (gradients flow into it), kept in a name-sorted map so the optimizer
//!   sees the parameters in a deterministic order;
//! - frozen (frozen stages, FrozenBatchNorm buffers) → a plain tensor, so the backward pass stops
//!   there (candle has no `no_grad`).
//!
//! Every weight handed out is remembered, so [`Params::state_dict`] is the full model for
//! `model_final.safetensors`, and every loaded key that was used is recorded, so the caller can
//! list the unused ones (`fc.*` of an ImageNet checkpoint is expected; anything else is a typo).
//! A loaded tensor whose shape differs from the requested one is an error naming the key and both
//! shapes.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// Errors of the parameter store; wrapped into `candle_core::Error` when raised inside the
/// `VarBuilder` so the message survives.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error(
        "weight `{name}`: the model expects shape {expected:?}, the loaded file has {found:?}"
    )]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "weight `{name}` was requested twice with different shapes: {first:?} then {second:?}"
    )]
    Reshaped {
        name: String,
        first: Vec<usize>,
        second: Vec<usize>,
    },
    #[error("weight `{name}` is not in the loaded file (hint: the file may be for another architecture; check --backbone)")]
    Missing { name: String },
    #[error(
        "frozen weight `{name}` differs from the value being assigned; frozen weights are fixed \
         when the model is built (hint: build the parameter store from these weights)"
    )]
    FrozenDiffers { name: String },
    #[error("weight `{name}` was requested without a shape and is not in the loaded file")]
    MissingUnchecked { name: String },
    #[error("initialising `{name}` from {init:?}: {reason}")]
    BadInit {
        name: String,
        init: String,
        reason: String,
    },
    #[error("{path}: unsupported weight file extension (expected .safetensors, .pth or .pt)")]
    UnknownFormat { path: String },
}

/// Decides whether a weight (by its full state-dict name) is trained.
pub type TrainablePredicate = dyn Fn(&str) -> bool + Send + Sync;

#[derive(Default)]
struct Store {
    /// Tensors read from a file, by state-dict name.
    loaded: HashMap<String, Tensor>,
    /// Loaded names the model asked for.
    used: BTreeSet<String>,
    /// Names drawn from their `Init` hint (not in the file).
    initialised: BTreeSet<String>,
    trainable: BTreeMap<String, Var>,
    frozen: BTreeMap<String, Tensor>,
}

/// The shared parameter store. Cloning is cheap (the store is shared).
#[derive(Clone)]
pub struct Params {
    store: Arc<Mutex<Store>>,
    is_trainable: Arc<TrainablePredicate>,
    seed: u64,
    /// Every weight must come from `loaded` (evaluation, prediction, resuming).
    require_loaded: bool,
}

impl Params {
    /// A store answering from `loaded` (may be empty), initialising the rest from the hints with
    /// generators seeded by `seed` and each weight's name (so an initial value does not depend on
    /// the order in which the model asks for weights).
    pub fn new(
        loaded: HashMap<String, Tensor>,
        is_trainable: impl Fn(&str) -> bool + Send + Sync + 'static,
        seed: u64,
    ) -> Self {
        let store = Store {
            loaded,
            ..Store::default()
        };
        Self {
            store: Arc::new(Mutex::new(store)),
            is_trainable: Arc::new(is_trainable),
            seed,
            require_loaded: false,
        }
    }

    /// Makes a weight absent from the loaded tensors an error instead of an initialisation
    /// (loading a whole model for evaluation or prediction).
    pub fn require_loaded(mut self) -> Self {
        self.require_loaded = true;
        self
    }

    /// A `VarBuilder` backed by this store.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// The trainable parameters, sorted by name.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        let store = self.lock();
        store
            .trainable
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Every weight handed out (trainable and frozen), sorted by name: the model's state dict.
    pub fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let store = self.lock();
        let mut all = store.frozen.clone();
        for (name, var) in &store.trainable {
            all.insert(name.clone(), var.as_tensor().clone());
        }
        all
    }

    /// Loaded keys the model never asked for, sorted.
    pub fn unused_keys(&self) -> Vec<String> {
        let store = self.lock();
        let mut unused: Vec<String> = store
            .loaded
            .keys()
            .filter(|k| !store.used.contains(*k))
            .cloned()
            .collect();
        unused.sort();
        unused
    }

    /// Weights that were not in the loaded tensors and were initialised from their hint, sorted
    /// (with ImageNet backbone weights: the FPN and the heads).
    pub fn initialised_keys(&self) -> Vec<String> {
        self.lock().initialised.iter().cloned().collect()
    }

    /// Overwrites the trainable weights in place with `tensors` (the model sees the new values:
    /// a `Var` shares its storage with the model's handle), and checks that every frozen weight
    /// already equals its entry (a frozen weight is a plain tensor the model holds, which cannot
    /// be changed after the model is built; to load different frozen values, build the store
    /// from them, e.g. `Params::new(checkpoint weights, ..).require_loaded()`). Returns the
    /// names of weights `tensors` lacks.
    pub fn assign(&self, tensors: &HashMap<String, Tensor>) -> candle_core::Result<Vec<String>> {
        let store = self.lock();
        let mut missing = Vec::new();
        for (name, var) in &store.trainable {
            let Some(src) = tensors.get(name) else {
                missing.push(name.clone());
                continue;
            };
            check_shape(name, var.dims(), src.dims())?;
            // `copy`: the source may share storage with this very Var.
            var.set(&src.to_dtype(var.dtype())?.to_device(var.device())?.copy()?)?;
        }
        for (name, old) in &store.frozen {
            let Some(src) = tensors.get(name) else {
                missing.push(name.clone());
                continue;
            };
            check_shape(name, old.dims(), src.dims())?;
            let src = src.to_dtype(old.dtype())?.to_device(old.device())?;
            let differs = old.ne(&src)?.to_dtype(candle_core::DType::F32)?.sum_all()?;
            if differs.to_scalar::<f32>()? > 0.0 {
                return Err(candle_core::Error::wrap(ParamsError::FrozenDiffers {
                    name: name.clone(),
                }));
            }
        }
        missing.sort();
        Ok(missing)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // A poisoned lock only means another thread panicked mid-insert; the maps stay valid.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn init(
        &self,
        name: &str,
        shape: &Shape,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor, ParamsError> {
        init_tensor(self.seed, name, shape, init)
            .and_then(|t| t.to_dtype(dtype).and_then(|t| t.to_device(dev)))
            .map_err(|e| ParamsError::BadInit {
                name: name.to_string(),
                init: format!("{init:?}"),
                reason: e.to_string(),
            })
    }
}

fn check_shape(name: &str, expected: &[usize], found: &[usize]) -> candle_core::Result<()> {
    if expected != found {
        return Err(candle_core::Error::wrap(ParamsError::ShapeMismatch {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        }));
    }
    Ok(())
}

impl SimpleBackend for Params {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        // Asked twice (shared weights): hand out the same tensor.
        {
            let store = self.lock();
            let existing = store
                .trainable
                .get(name)
                .map(|v| v.as_tensor().clone())
                .or_else(|| store.frozen.get(name).cloned());
            if let Some(t) = existing {
                if t.dims() != s.dims() {
                    return Err(candle_core::Error::wrap(ParamsError::Reshaped {
                        name: name.to_string(),
                        first: t.dims().to_vec(),
                        second: s.dims().to_vec(),
                    }));
                }
                return Ok(t);
            }
        }
        let loaded = self.lock().loaded.get(name).cloned();
        let value = match loaded {
            Some(t) => {
                check_shape(name, s.dims(), t.dims())?;
                self.lock().used.insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)?.contiguous()?
            }
            None if self.require_loaded => {
                return Err(candle_core::Error::wrap(ParamsError::Missing {
                    name: name.to_string(),
                }))
            }
            None => {
                let t = self
                    .init(name, &s, h, dtype, dev)
                    .map_err(candle_core::Error::wrap)?;
                self.lock().initialised.insert(name.to_string());
                t
            }
        };
        let mut store = self.lock();
        if (self.is_trainable)(name) {
            // `from_tensor` copies into fresh storage, so a loaded or mmapped tensor is not aliased.
            let var = Var::from_tensor(&value)?;
            let t = var.as_tensor().clone();
            store.trainable.insert(name.to_string(), var);
            Ok(t)
        } else {
            store.frozen.insert(name.to_string(), value.clone());
            Ok(value)
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let loaded = self.lock().loaded.get(name).cloned();
        match loaded {
            Some(t) => {
                let s = t.shape().clone();
                self.get(s, name, Init::Const(0.), dtype, dev)
            }
            None => Err(candle_core::Error::wrap(ParamsError::MissingUnchecked {
                name: name.to_string(),
            })),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lock().loaded.contains_key(name)
    }
}

/// A 64-bit FNV-1a hash: stable across runs and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Draws `init` for the weight `name` on the host in f32, from a generator seeded by
/// `(seed, name)`. Kaiming follows torch.nn.init: std = gain / sqrt(fan), uniform bound
/// sqrt(3)·std.
fn init_tensor(seed: u64, name: &str, shape: &Shape, init: Init) -> candle_core::Result<Tensor> {
    let n = shape.elem_count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(name.as_bytes()));
    let wrap = |e: &dyn std::fmt::Display| candle_core::Error::Msg(e.to_string());
    let values: Vec<f32> = match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => {
            let d = Normal::new(mean, stdev).map_err(|e| wrap(&e))?;
            (0..n).map(|_| d.sample(&mut rng) as f32).collect()
        }
        Init::Uniform { lo, up } => {
            let d = Uniform::new(lo, up).map_err(|e| wrap(&e))?;
            (0..n).map(|_| d.sample(&mut rng) as f32).collect()
        }
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    let d = Uniform::new_inclusive(-bound, bound).map_err(|e| wrap(&e))?;
                    (0..n).map(|_| d.sample(&mut rng) as f32).collect()
                }
                NormalOrUniform::Normal => {
                    let d = Normal::new(0.0, std).map_err(|e| wrap(&e))?;
                    (0..n).map(|_| d.sample(&mut rng) as f32).collect()
                }
            }
        }
    };
    Tensor::from_vec(values, shape.clone(), &Device::Cpu)
}

/// Reads every tensor of a `.safetensors` or zip-format `.pth`/`.pt` file onto `device` (a
/// `.pth` state dict nested under a key such as `"model"` is found by [`crate::weights::pth::read_pth`]).
pub fn read_tensor_file(path: &Path, device: &Device) -> anyhow::Result<HashMap<String, Tensor>> {
    use anyhow::Context;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tensors = match ext {
        "safetensors" => candle_core::safetensors::load(path, device)
            .with_context(|| format!("reading {}", path.display()))?,
        "pth" | "pt" => crate::weights::pth::read_pth(path)?
            .tensors
            .into_iter()
            .map(|(n, t)| Ok((n, t.to_device(device)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?,
        _ => {
            return Err(ParamsError::UnknownFormat {
                path: path.display().to_string(),
            }
            .into())
        }
    };
    Ok(tensors)
}

#[cfg(test)]
mod tests;
