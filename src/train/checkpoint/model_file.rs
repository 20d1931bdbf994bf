//! The final model file: weights under their plain state-dict names (a `VarBuilder` reads it
//! directly) and, in the safetensors metadata, the class names and the resolved config, so
//! `detect eval` and `detect predict` need nothing else.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Tensor;

use super::{io_err, meta_json, serialize, write_atomic, CheckpointError, Result};

const MODEL_FORMAT: &str = "detect-model-v1";

/// What travels with the final model besides its weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// Class names indexed by contiguous label - 1 (label 0 is the background).
    pub class_names: Vec<String>,
    /// The resolved config (architecture and everything needed to rebuild the model).
    pub config: serde_json::Value,
}

/// Writes the final model (weights under their state-dict names + [`ModelMeta`]) atomically.
pub fn save_model(path: &Path, model: &BTreeMap<String, Tensor>, meta: &ModelMeta) -> Result<()> {
    let tensors: Vec<(String, &Tensor)> = model.iter().map(|(n, t)| (n.clone(), t)).collect();
    let class_names = serde_json::to_string(&meta.class_names).expect("strings serialise");
    let metadata = HashMap::from([
        ("format".to_string(), MODEL_FORMAT.to_string()),
        ("class_names".to_string(), class_names),
        ("config".to_string(), meta.config.to_string()),
    ]);
    let bytes = serialize(path, tensors, metadata)?;
    write_atomic(path, &bytes).map_err(io_err(path))
}

/// Reads a model file's [`ModelMeta`] from its header alone (without reading the weights).
/// `None` for a safetensors file not written by [`save_model`] (e.g. converted torchvision
/// weights).
pub fn read_model_meta(path: &Path) -> Result<Option<ModelMeta>> {
    const WHAT: &str = "safetensors header";
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io_err(path))?;
    let len = u64::from_le_bytes(len);
    let format_err = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        what: WHAT,
        reason,
    };
    if len > 100_000_000 {
        return Err(format_err(format!("header length {len} is implausible")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io_err(path))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| format_err(e.to_string()))?;
    let Some(meta) = header.get("__metadata__") else {
        return Ok(None);
    };
    let meta: HashMap<String, String> =
        serde_json::from_value(meta.clone()).map_err(|e| format_err(e.to_string()))?;
    if meta.get("format").map(String::as_str) != Some(MODEL_FORMAT) {
        return Ok(None);
    }
    let class_names = meta_json(path, &meta, "class_names", WHAT)?;
    Ok(Some(ModelMeta {
        class_names: serde_json::from_value(class_names)
            .map_err(|e| format_err(format!("class_names: {e}")))?,
        config: meta_json(path, &meta, "config", WHAT)?,
    }))
}
