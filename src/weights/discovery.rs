//! Which weights `detect predict` (and `detect eval`) use without `--weights`: the newest
//! `runs/*/model_final.safetensors` that `detect train` wrote under the current directory.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::bail;

use crate::weights::registry::{WeightsKind, WeightsRef};
use crate::weights::resolve::{resolve, ResolvedWeights};

/// The folder `detect train` writes its runs into, relative to the working directory.
pub const RUNS_DIR: &str = "runs";
/// The file a finished training run leaves in its run folder.
pub const FINAL_MODEL_FILE: &str = "model_final.safetensors";

/// The most recently modified `dir/runs/*/model_final.safetensors` (ties: the last by path).
pub fn find_latest_model(dir: &Path) -> anyhow::Result<PathBuf> {
    let runs = dir.join(RUNS_DIR);
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            let candidate = entry.path().join(FINAL_MODEL_FILE);
            let Ok(modified) = std::fs::metadata(&candidate).and_then(|m| m.modified()) else {
                continue;
            };
            let key = (modified, candidate);
            if newest.as_ref().is_none_or(|best| key > *best) {
                newest = Some(key);
            }
        }
    }
    match newest {
        Some((_, path)) => Ok(path),
        None => bail!(
            "no --weights given and no trained model found at `{}/*/{FINAL_MODEL_FILE}`\n\
             hint: train one first (`detect train --dataset shapes`), or pass --weights FILE \
             (a .safetensors or torchvision .pth detector)",
            runs.display()
        ),
    }
}

/// `weights` (a path or a registry name, fetched) when given, else [`find_latest_model`] in the
/// current directory.
pub fn resolve_weights(weights: Option<&str>) -> anyhow::Result<ResolvedWeights> {
    match weights {
        Some(value) => resolve(&WeightsRef::parse(value), WeightsKind::Detector),
        None => Ok(ResolvedWeights::file(find_latest_model(
            &std::env::current_dir()?,
        )?)),
    }
}

#[cfg(test)]
mod tests;
