//! Training checkpoints and the final model file, as safetensors with JSON metadata.
//!
//! A checkpoint `model_0005000.safetensors` holds the model weights under `model.<name>`, the
//! SGD momentum buffers under `optimizer.momentum_buffer.<name>`, and in the header metadata the
//! iteration, the RNG state and the resolved config (JSON strings). `last_checkpoint` is a text
//! file naming the newest checkpoint. Both are written with [`write_atomic`] (temporary file,
//! fsync, rename), the checkpoint first: a crash at any moment leaves `last_checkpoint` naming a
//! complete file. Only the newest `keep` checkpoints are kept.
//!
//! `model_final.safetensors` holds the weights under their plain state-dict names (so a
//! `VarBuilder` reads it directly) and, in the metadata, the class names and the config
//! (architecture), so `detect eval` and `detect predict` need nothing else.
mod model_file;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};

use crate::atomic::write_atomic;
use crate::atomic::{write_atomic_with_fault, Fault};
pub use model_file::{read_model_meta, save_model, ModelMeta};

/// The file naming the newest checkpoint, in the output folder.
pub const LAST_CHECKPOINT: &str = "last_checkpoint";
/// The final model's file name, in the output folder.
pub const MODEL_FINAL: &str = "model_final.safetensors";
const MODEL_PREFIX: &str = "model.";
const MOMENTUM_PREFIX: &str = "optimizer.momentum_buffer.";
const CHECKPOINT_FORMAT: &str = "detect-checkpoint-v1";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Tensor {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("{path}: not a valid {what}: {reason}")]
    Format {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
}

pub(crate) type Result<T> = std::result::Result<T, CheckpointError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn tensor_err(path: &Path) -> impl FnOnce(candle_core::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Tensor {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything needed to resume training exactly.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Number of completed iterations (training resumes at this iteration index).
    pub iteration: u64,
    /// The model's state dict (trainable and frozen weights).
    pub model: BTreeMap<String, Tensor>,
    /// The optimizer's momentum buffers by parameter name.
    pub momentum: BTreeMap<String, Tensor>,
    /// The training loop's random state, as it chooses to serialise it.
    pub rng_state: serde_json::Value,
    /// The full resolved config.
    pub config: serde_json::Value,
}

/// Writes and finds checkpoints in one output folder.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
    keep: usize,
    fault: Option<Fault>,
}

impl Checkpointer {
    /// Checkpoints in `dir`, keeping the newest `keep` (at least 1).
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            dir: dir.into(),
            keep: keep.max(1),
            fault: None,
        }
    }

    /// Makes every later checkpoint write fail as `fault` says.
    #[cfg(test)]
    fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// The checkpoint file for an iteration.
    pub fn path_for(&self, iteration: u64) -> PathBuf {
        self.dir.join(format!("model_{iteration:07}.safetensors"))
    }

    /// Saves `checkpoint`, points `last_checkpoint` at it, then removes older checkpoints beyond
    /// the newest `keep`. Returns the checkpoint's path.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<PathBuf> {
        let path = self.path_for(checkpoint.iteration);
        let mut tensors: Vec<(String, &Tensor)> = Vec::new();
        tensors.extend(
            checkpoint
                .model
                .iter()
                .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t)),
        );
        tensors.extend(
            checkpoint
                .momentum
                .iter()
                .map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), t)),
        );
        let metadata = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("iteration".to_string(), checkpoint.iteration.to_string()),
            ("rng_state".to_string(), checkpoint.rng_state.to_string()),
            ("config".to_string(), checkpoint.config.to_string()),
        ]);
        let bytes = serialize(&path, tensors, metadata)?;
        write_atomic_with_fault(&path, &bytes, self.fault).map_err(io_err(&path))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let last = self.dir.join(LAST_CHECKPOINT);
        write_atomic(&last, format!("{name}\n").as_bytes()).map_err(io_err(&last))?;
        self.prune(name)?;
        Ok(path)
    }

    /// The checkpoint `last_checkpoint` names, if there is one.
    pub fn last(&self) -> Result<Option<PathBuf>> {
        let last = self.dir.join(LAST_CHECKPOINT);
        match std::fs::read_to_string(&last) {
            Ok(name) => Ok(Some(self.dir.join(name.trim()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&last)(e)),
        }
    }

    /// Loads the checkpoint `last_checkpoint` names, if there is one.
    pub fn load_last(&self, device: &Device) -> Result<Option<Checkpoint>> {
        self.last()?
            .map(|p| load_checkpoint(&p, device))
            .transpose()
    }

    /// Checkpoints in the folder by iteration, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let digits = name
                .strip_prefix("model_")
                .and_then(|n| n.strip_suffix(".safetensors"));
            if let Some(iteration) = digits.and_then(|d| d.parse::<u64>().ok()) {
                found.push((iteration, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    fn prune(&self, newest: &str) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep);
        for (_, path) in all.into_iter().take(excess) {
            if path.file_name().and_then(|n| n.to_str()) != Some(newest) {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn serialize(
    path: &Path,
    tensors: Vec<(String, &Tensor)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    // `View for &Tensor` copies to the host and fails (panics) on nothing we produce; convert
    // to contiguous first so the bytes are the tensor's logical order.
    let contiguous: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.contiguous()?)))
        .collect::<candle_core::Result<_>>()
        .map_err(tensor_err(path))?;
    safetensors::serialize(contiguous, Some(metadata)).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        what: "tensor set",
        reason: e.to_string(),
    })
}

/// Reads a safetensors file: its tensors on `device` and its header metadata.
fn read(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let format_err = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        what: "safetensors file",
        reason,
    };
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format_err(e.to_string()))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format_err(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        tensors.insert(name, view.load(device).map_err(tensor_err(path))?);
    }
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

pub(crate) fn meta_field<'a>(
    path: &Path,
    meta: &'a HashMap<String, String>,
    key: &str,
    what: &'static str,
) -> Result<&'a str> {
    meta.get(key)
        .map(String::as_str)
        .ok_or_else(|| CheckpointError::Format {
            path: path.to_path_buf(),
            what,
            reason: format!("the metadata has no `{key}`"),
        })
}

pub(crate) fn meta_json(
    path: &Path,
    meta: &HashMap<String, String>,
    key: &str,
    what: &'static str,
) -> Result<serde_json::Value> {
    let raw = meta_field(path, meta, key, what)?;
    serde_json::from_str(raw).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        what,
        reason: format!("metadata `{key}` is not JSON: {e}"),
    })
}

/// Loads a checkpoint written by [`Checkpointer::save`].
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    const WHAT: &str = "detect checkpoint";
    let (tensors, meta) = read(path, device)?;
    let format = meta_field(path, &meta, "format", WHAT)?;
    if format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Format {
            path: path.to_path_buf(),
            what: WHAT,
            reason: format!("format `{format}`, expected `{CHECKPOINT_FORMAT}`"),
        });
    }
    let raw_iteration = meta_field(path, &meta, "iteration", WHAT)?;
    let iteration = raw_iteration.parse().map_err(|_| CheckpointError::Format {
        path: path.to_path_buf(),
        what: WHAT,
        reason: format!("iteration `{raw_iteration}` is not an integer"),
    })?;
    let mut model = BTreeMap::new();
    let mut momentum = BTreeMap::new();
    for (name, tensor) in tensors {
        if let Some(n) = name.strip_prefix(MOMENTUM_PREFIX) {
            momentum.insert(n.to_string(), tensor);
        } else if let Some(n) = name.strip_prefix(MODEL_PREFIX) {
            model.insert(n.to_string(), tensor);
        } else {
            return Err(CheckpointError::Format {
                path: path.to_path_buf(),
                what: WHAT,
                reason: format!("unexpected tensor `{name}`"),
            });
        }
    }
    Ok(Checkpoint {
        iteration,
        model,
        momentum,
        rng_state: meta_json(path, &meta, "rng_state", WHAT)?,
        config: meta_json(path, &meta, "config", WHAT)?,
    })
}

#[cfg(test)]
mod tests;
