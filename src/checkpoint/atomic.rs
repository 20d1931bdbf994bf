//! Crash-safe file replacement: write a temporary file in the destination's folder, flush it to
//! disk (`fsync`), rename it over the destination, then `fsync` the folder so the rename itself
//! is durable. A crash or kill at any moment leaves either the old file or the new one, never a
//! mix; at worst a stale hidden temporary (`.NAME.tmp-PID`) remains.
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

/// `dir/.NAME.tmp-PID`.
pub(crate) fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
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
    let tmp = temporary_path(path)?;
    let result = write_then_rename(path, &tmp, bytes, fault);
    if result.is_err() && !matches!(fault, Some(Fault::KilledAfter(_))) {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
    fault: Option<Fault>,
) -> io::Result<()> {
    let mut file = File::create(tmp)?;
    match fault {
        Some(Fault::WriteErrorAfter(n)) | Some(Fault::KilledAfter(n)) => {
            file.write_all(&bytes[..n.min(bytes.len())])?;
            file.sync_all()?;
            return Err(io::Error::other(format!(
                "injected failure after {n} bytes"
            )));
        }
        _ => file.write_all(bytes)?,
    }
    file.sync_all()?;
    drop(file);
    if fault == Some(Fault::Rename) {
        return Err(io::Error::other("injected rename failure"));
    }
    std::fs::rename(tmp, path)?;
    sync_parent(path)
}

/// Makes a rename in `path`'s folder durable (a no-op where folders cannot be opened).
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match File::open(parent) {
        Ok(dir) => dir.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}
