//! Fetching a registry file into the cache, verified.
//!
//! Files live in `$DETECT_HOME/weights/` (default `~/.cache/detect/weights/`), under the URL's
//! file name (torchvision's own names, e.g. `fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`), so a
//! file downloaded by hand can be dropped there. A download streams into a temporary file in
//! that folder while its SHA-256 is computed; only when the length and the hash match is it
//! renamed into place ([`crate::atomic::write_atomically`]), so a corrupted or partial download
//! is never cached. A cached file is hashed again on every use (about a second for 170 MB), so a
//! file damaged later is refused too. Verification cannot be turned off.
//!
//! `DETECT_WEIGHTS_MIRROR=URL` replaces the scheme and host of every registry URL (the path is
//! kept), for users behind a mirror and for tests serving files from a loopback server.
//!
//! HTTP client: `ureq` 2 (blocking, rustls; no async runtime). System proxies from the
//! environment are honoured, except for loopback hosts (ureq 2 does not read `NO_PROXY`).
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomically;
use crate::weights::registry::RegistryEntry;

/// The folder holding detect's downloads (default `~/.cache/detect`).
pub const HOME_ENV: &str = "DETECT_HOME";
/// Replaces scheme and host of registry URLs.
pub const MIRROR_ENV: &str = "DETECT_WEIGHTS_MIRROR";

/// `$DETECT_HOME/weights`, else `$HOME/.cache/detect/weights`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    let home = match std::env::var_os(HOME_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache").join("detect"),
            None => bail!(
                "neither {HOME_ENV} nor HOME is set: set {HOME_ENV}=DIR to say where \
                           downloaded weights go"
            ),
        },
    };
    Ok(home.join("weights"))
}

/// The file of registry entry `name`: from the cache when it is there (and still verifies),
/// else downloaded, verified and cached.
pub fn fetch(name: &str, entry: &RegistryEntry) -> anyhow::Result<PathBuf> {
    let path = cache_dir()?.join(entry.file_name()?);
    if path.is_file() {
        let digest = sha256_of_file(&path)?;
        verify(&digest, entry).with_context(|| {
            format!(
                "the cached `{}` is damaged\nhint: delete it and run again to download it anew",
                path.display()
            )
        })?;
        eprintln!("using `{name}` from the cache: {}", path.display());
        return Ok(path);
    }
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the weights cache `{}`", dir.display()))?;
    let url = mirrored(&entry.url, std::env::var(MIRROR_ENV).ok().as_deref());
    eprintln!("downloading `{name}` ({}) from {url}", entry.source);
    let hint = || {
        format!(
            "hint: without internet, download {} elsewhere and put it at {}\n\
             (it is verified against the registry's SHA-256 when used)",
            entry.url,
            path.display()
        )
    };
    write_atomically(&path, |tmp| download_verified(&url, entry, tmp))
        .with_context(|| format!("cannot fetch `{name}`; nothing was cached\n{}", hint()))?;
    eprintln!("verified and cached at {}", path.display());
    Ok(path)
}

/// `url` with its scheme and host replaced by `mirror` (its path kept).
pub fn mirrored(url: &str, mirror: Option<&str>) -> String {
    let Some(mirror) = mirror.filter(|m| !m.is_empty()) else {
        return url.to_string();
    };
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    format!("{}{path}", mirror.trim_end_matches('/'))
}

/// Streams `url` into `tmp`, hashing as it goes; an error unless the length and hash match.
fn download_verified(url: &str, entry: &RegistryEntry, tmp: &Path) -> anyhow::Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .try_proxy_from_env(!is_loopback(url))
        .build();
    let response = agent
        .get(url)
        .call()
        .map_err(|e| anyhow::anyhow!("cannot download {url}: {e}"))?;
    let expected_len: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let bar = ProgressBar::new(expected_len.unwrap_or(0)).with_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, ETA {eta}")
            .expect("valid template"),
    );
    let mut reader = response.into_reader();
    let mut file = File::create(tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("download of {url} broke off after {received} bytes"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| format!("writing `{}`", tmp.display()))?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(len) = expected_len {
        if received != len {
            bail!("download of {url} is partial: {received} of {len} bytes");
        }
    }
    file.sync_all()?;
    verify(&hex(&hasher.finalize()), entry)
        .with_context(|| format!("{url}: the downloaded file is corrupt or not the published one"))
}

fn is_loopback(url: &str) -> bool {
    let host = url.split_once("://").map_or(url, |(_, r)| r);
    ["127.", "localhost", "[::1]"]
        .iter()
        .any(|h| host.starts_with(h))
}

/// Checks a lowercase hex SHA-256 against the entry's full hash or published prefix.
pub fn verify(digest: &str, entry: &RegistryEntry) -> anyhow::Result<()> {
    let (expected, ok) = match (&entry.sha256, &entry.sha256_prefix) {
        (Some(full), _) => (full, digest.eq_ignore_ascii_case(full)),
        (None, Some(prefix)) => (
            prefix,
            digest.len() >= prefix.len() && digest[..prefix.len()].eq_ignore_ascii_case(prefix),
        ),
        (None, None) => bail!("the registry entry has no hash; refusing an unverifiable file"),
    };
    if !ok {
        bail!("SHA-256 mismatch: the file has {digest}, the registry expects {expected}");
    }
    Ok(())
}

/// The SHA-256 of a file, lowercase hex.
pub fn sha256_of_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("reading `{}`", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
