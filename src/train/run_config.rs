//! What a run resolves to: the detector, categories, solver, dataset, batch and seed, and the
//! `--precision` of CUDA convolutions. It is written to `config.json` and stored in every
//! checkpoint and in the final model; `--resume` requires the run it continues to have resolved
//! to the same, except for the precision (a resumed run may change it, as PyTorch allows).
use std::path::Path;

use anyhow::Context;
use datasets::coco::CategoryMap;
use serde_json::json;

use crate::atomic::write_atomic;
use crate::model::config::DetectorConfig;
use crate::train::options::TrainOptions;

/// The keys of the resolved config that `--resume` requires to be equal.
pub const SAME_RUN_KEYS: [&str; 6] = [
    "detector",
    "categories",
    "solver",
    "dataset",
    "batch_size",
    "seed",
];

/// The resolved config of a run with these options, detector and categories.
pub fn resolved_config(
    options: &TrainOptions,
    detector: &DetectorConfig,
    map: &CategoryMap,
) -> serde_json::Value {
    json!({
        "detector": detector,
        "categories": map,
        "solver": options.solver,
        "dataset": options.dataset.name(),
        "batch_size": options.batch_size,
        "seed": options.seed,
        "precision": options.precision,
    })
}

/// Writes `config` to `out/config.json` (a temp file renamed into place).
pub fn write_config(out: &Path, config: &serde_json::Value) -> anyhow::Result<()> {
    let path = out.join("config.json");
    write_atomic(&path, serde_json::to_string_pretty(config)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `--resume` continues the same run: its resolved config (model, solver, data, seed) must
/// equal the checkpoint's.
pub fn check_same_run(saved: &serde_json::Value, now: &serde_json::Value) -> anyhow::Result<()> {
    let differ: Vec<&str> = SAME_RUN_KEYS
        .into_iter()
        .filter(|k| saved.get(k) != now.get(k))
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "--resume: these settings differ from the checkpoint's: {}\nhint: resume with the \
         options of the interrupted run (they are in its config.json)",
        differ.join(", ")
    )
}
