//! The one way `detect` replaces a file: write a temporary file in the destination's folder,
//! flush it to disk (`fsync`), rename it over the destination, then `fsync` the folder so the
//! rename itself is durable. A crash or kill at any moment leaves either the old file or the new
//! one, never a mix; at worst a stale hidden temporary (`.NAME.tmp-PID`) remains. Checkpoints,
//! model files, configs, metrics, results, plots and drawings all go through [`replace_file`].
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where a test makes [`write_atomic`] fail, to check that the previous file survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Fault {
    /// The write fails with an I/O error after this many bytes (the temporary is cleaned up).
    WriteErrorAfter(usize),
    /// The process "dies" after this many bytes: error out leaving the partial temporary behind.
    KilledAfter(usize),
    /// Everything is written and flushed, but the rename fails.
    Rename,
}

/// Calls `write` with a temporary path in `path`'s folder, then flushes and renames it to
/// `path` (see [`replace_file`]); for writers that need a path rather than bytes (an image
/// encoder, a serializer). The temporary file is removed when `write` or the rename fails.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    replace_file(path, write, None)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with_fault(path, bytes, None)
}

pub(crate) fn write_atomic_with_fault(
    path: &Path,
    bytes: &[u8],
    fault: Option<Fault>,
) -> io::Result<()> {
    let fill = |tmp: &Path| -> io::Result<()> {
        let mut file = File::create(tmp)?;
        match fault {
            Some(Fault::WriteErrorAfter(n)) | Some(Fault::KilledAfter(n)) => {
                file.write_all(&bytes[..n.min(bytes.len())])?;
                file.sync_all()?;
                Err(io::Error::other(format!(
                    "injected failure after {n} bytes"
                )))
            }
            _ => file.write_all(bytes),
        }
    };
    replace_file(path, fill, fault)
}

/// The writer behind both entry points: `fill` writes the temporary file, which is then
/// flushed, renamed over `path`, and the rename made durable. On failure the temporary is
/// removed (except for the simulated kill, which leaves it behind as a real kill would).
fn replace_file<E: From<io::Error>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
    fault: Option<Fault>,
) -> Result<(), E> {
    let tmp = temporary_path(path)?;
    let result = fill(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .and_then(|()| match fault {
                Some(Fault::Rename) => Err(io::Error::other("injected rename failure")),
                _ => std::fs::rename(&tmp, path),
            })
            .and_then(|()| sync_parent(path))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot move `{}` to `{}`: {e}",
                        tmp.display(),
                        path.display()
                    ),
                )
                .into()
            })
    });
    if result.is_err() && !matches!(fault, Some(Fault::KilledAfter(_))) {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `dir/.NAME.tmp-PID`.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` does not name a file", path.display()),
        )
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// Makes a rename in `path`'s folder durable (a no-op where folders cannot be opened).
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match File::open(parent) {
        Ok(dir) => dir.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
