//! Writing a file so that readers never see it half-written: write a temporary file next to
//! the destination, then rename it over the destination (atomic on one filesystem).
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Calls `write` with a temporary path in `path`'s folder, then renames it to `path`.
/// The temporary file is removed when `write` or the rename fails.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temporary = temporary_path(path)?;
    let result = write(&temporary).and_then(|()| {
        std::fs::rename(&temporary, path).with_context(|| {
            format!(
                "cannot move `{}` to `{}`",
                temporary.display(),
                path.display()
            )
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// `dir/.name.tmp-<pid>`: hidden, in the same folder (so the rename stays on one filesystem).
fn temporary_path(path: &Path) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("`{}` does not name a file", path.display()))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(temporary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_neither_file_nor_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let result = write_atomically(&path, |tmp| {
            std::fs::write(tmp, b"partial")?;
            anyhow::bail!("disk full")
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, |tmp| Ok(std::fs::write(tmp, b"new")?)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
