//! Which weights `detect predict` (and `detect eval`) use without `--weights`: the newest
//! `runs/*/model_final.safetensors` that `detect train` wrote under the current directory.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::bail;

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

/// `weights` when given, else [`find_latest_model`] in the current directory.
pub fn resolve_weights(weights: Option<&Path>) -> anyhow::Result<PathBuf> {
    match weights {
        Some(path) => Ok(path.to_path_buf()),
        None => find_latest_model(&std::env::current_dir()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, age_seconds: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(age_seconds))
            .unwrap();
    }

    #[test]
    fn picks_the_most_recent_final_model() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("runs/b-old/model_final.safetensors"), 3600);
        touch(&dir.path().join("runs/a-new/model_final.safetensors"), 10);
        touch(
            &dir.path()
                .join("runs/c-unfinished/model_0000100.safetensors"),
            0,
        );
        let found = find_latest_model(dir.path()).unwrap();
        assert_eq!(found, dir.path().join("runs/a-new/model_final.safetensors"));
    }

    #[test]
    fn no_model_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("runs/x/model_0000100.safetensors"), 0);
        let message = find_latest_model(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("runs/*/model_final.safetensors"),
            "{message}"
        );
        assert!(
            message.contains("hint:") && message.contains("--weights"),
            "{message}"
        );
    }
}
