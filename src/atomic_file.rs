//! Writing a file so that readers never see it half-written: write a temporary file next to
//! the destination, then rename it over the destination (atomic on one filesystem).
use std::path::Path;

use crate::checkpoint::atomic::{sync_parent, temporary_path};

use anyhow::Context;

/// Calls `write` with a temporary path in `path`'s folder, flushes the file to disk, then
/// renames it to `path` (the same temporary naming and durability as the checkpoints'
/// [`crate::checkpoint::write_atomic`], for writers that need a path rather than bytes).
/// The temporary file is removed when `write` or the rename fails.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temporary = temporary_path(path)
        .with_context(|| format!("`{}` does not name a file", path.display()))?;
    let result = write(&temporary).and_then(|()| {
        std::fs::File::open(&temporary)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&temporary, path))
            .and_then(|()| sync_parent(path))
            .with_context(|| {
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
