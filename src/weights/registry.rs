//! Pretrained weights by name: the registry (`registry.json` beside this file, compiled in;
//! `DETECT_WEIGHTS_REGISTRY=FILE` replaces it) maps a name such as
//! `torchvision:fasterrcnn_resnet50_fpn` to its canonical URL, its hash, and what the file holds
//! (a whole detector or an ImageNet backbone, the architecture, FrozenBatchNorm's eps, and a
//! detector's classes). [`WeightsRef::parse`] decides whether a `--weights` value is a name or a
//! path; the download module (`weights/download.rs`) fetches and verifies the file.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use datasets::coco::CategoryMap;
use serde::Deserialize;

use crate::model::config::DetectorConfig;

/// The registry compiled into the binary.
const BUILT_IN: &str = include_str!("registry.json");

/// The environment variable naming a registry file that replaces the built-in one.
pub const REGISTRY_ENV: &str = "DETECT_WEIGHTS_REGISTRY";

/// A `--weights` / `--backbone-weights` value: a file, or a registry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsRef {
    File(PathBuf),
    /// `prefix:name`, looked up in the registry, never read as a file.
    Name(String),
}

impl WeightsRef {
    /// `prefix:rest` with a prefix of at least two lowercase letters, digits, `_` or `-` is a
    /// registry name (`torchvision:resnet50`); anything else is a path (a one-letter prefix is
    /// a Windows drive, `C:\...`).
    pub fn parse(value: &str) -> Self {
        let is_name = value.split_once(':').is_some_and(|(prefix, rest)| {
            prefix.len() >= 2
                && !rest.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        if is_name {
            Self::Name(value.to_string())
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

/// What a registry file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsKind {
    /// A whole Faster R-CNN (`backbone.*`, `rpn.*`, `roi_heads.*`).
    Detector,
    /// ImageNet classification weights of a ResNet/ResNeXt (`conv1.*`, `layer1.*`, `fc.*`).
    Backbone,
}

/// One registry entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// The canonical public URL; its last path segment is the cached file's name.
    pub url: String,
    /// The file's full SHA-256 (64 hex digits), when published.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The first hex digits of the SHA-256 that the publisher puts in the file name
    /// (torchvision: 8), verified as torch.hub's `check_hash` does, when no full hash is known.
    #[serde(default)]
    pub sha256_prefix: Option<String>,
    pub kind: WeightsKind,
    /// The backbone the file was trained with (`resnet50`, `resnext101_32x4d`).
    pub architecture: String,
    /// A detector's whole configuration when it is not torchvision's defaults around
    /// `architecture` (test stand-ins: torchvision's key layout at a small width).
    #[serde(default)]
    pub detector: Option<DetectorConfig>,
    /// FrozenBatchNorm2d's eps for these weights (torchvision's COCO detectors: 0.0).
    pub frozen_bn_eps: f64,
    /// Whose parameter names the file uses (`torchvision`, `timm-resnet`: the same names).
    #[serde(default)]
    pub key_layout: Option<String>,
    /// Where the weights come from (for people; printed when fetching).
    pub source: String,
    /// A detector's classes: model label → COCO category id and name.
    #[serde(default)]
    pub categories: Option<CategoryMap>,
    /// Layers of this architecture that `detect` does not build: the entry is refused.
    #[serde(default)]
    pub unsupported: Option<Vec<String>>,
}

/// The registry: names → entries, plus the ImageNet weights for each backbone.
#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    #[serde(default)]
    pub about: String,
    /// Backbone name → registry name of its ImageNet weights (`--backbone-weights imagenet`).
    #[serde(default)]
    pub imagenet: BTreeMap<String, String>,
    pub weights: BTreeMap<String, RegistryEntry>,
}

impl Registry {
    /// The registry in force: `$DETECT_WEIGHTS_REGISTRY` when set, else the built-in one.
    pub fn load() -> anyhow::Result<Self> {
        match std::env::var_os(REGISTRY_ENV) {
            Some(path) => Self::from_file(Path::new(&path)),
            None => Self::parse(BUILT_IN, "the built-in registry"),
        }
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the weights registry `{}`", path.display()))?;
        Self::parse(&text, &format!("`{}` ({REGISTRY_ENV})", path.display()))
    }

    /// Parses and checks every entry (hashes well-formed, imagenet names present).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let registry: Registry = serde_json::from_str(text)
            .with_context(|| format!("reading the weights registry {origin}"))?;
        for (name, entry) in &registry.weights {
            check_hashes(entry).with_context(|| format!("{origin}: entry `{name}`"))?;
        }
        for (backbone, name) in &registry.imagenet {
            match registry.weights.get(name) {
                Some(e) if e.kind == WeightsKind::Backbone => {}
                _ => bail!(
                    "{origin}: `imagenet.{backbone}` names `{name}`, which is not a backbone \
                     entry of the registry"
                ),
            }
        }
        Ok(registry)
    }

    /// The entry called `name`, or an error listing the known names.
    pub fn entry(&self, name: &str) -> anyhow::Result<&RegistryEntry> {
        match self.weights.get(name) {
            Some(e) => Ok(e),
            None => bail!(
                "`{name}` is not in the weights registry (it looks like a registry name, so it \
                 is not read as a file)\nknown names: {}\nhint: to use a file, give its path \
                 (e.g. ./{name}); to add a name, see {REGISTRY_ENV} in the README",
                self.weights.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The registry name of `backbone`'s ImageNet weights, or an error suggesting `none`.
    pub fn imagenet_name(&self, backbone: &str) -> anyhow::Result<&str> {
        match self.imagenet.get(backbone) {
            Some(name) => Ok(name),
            None => bail!(
                "no published ImageNet weights are known for backbone `{backbone}` (the registry \
                 has them for {})\nhint: train from random weights with `--backbone-weights \
                 none`, or give a file with `--backbone-weights PATH`",
                self.imagenet.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

impl RegistryEntry {
    /// Refuses an architecture `detect` does not build, naming the missing layers.
    pub fn check_supported(&self, name: &str) -> anyhow::Result<()> {
        if let Some(layers) = &self.unsupported {
            bail!(
                "`{name}` ({}) is an architecture detect does not build; these layers are \
                 missing:\n  {}\nhint: use `torchvision:fasterrcnn_resnet50_fpn`",
                self.source,
                layers.join("\n  ")
            );
        }
        Ok(())
    }

    /// The cached file's name: the URL's last path segment.
    pub fn file_name(&self) -> anyhow::Result<&str> {
        let path = self.url.split(['?', '#']).next().unwrap_or("");
        match path.rsplit('/').next() {
            Some(f) if !f.is_empty() && f != "." && f != ".." => Ok(f),
            _ => bail!("registry URL `{}` does not end in a file name", self.url),
        }
    }
}

/// A full hash is 64 hex digits; a prefix at least 8; at least one of them.
fn check_hashes(entry: &RegistryEntry) -> anyhow::Result<()> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match (&entry.sha256, &entry.sha256_prefix) {
        (Some(h), _) if h.len() != 64 || !hex(h) => {
            bail!("`sha256` must be 64 hex digits, got `{h}`")
        }
        (None, Some(p)) if p.len() < 8 || p.len() > 64 || !hex(p) => {
            bail!("`sha256_prefix` must be 8 to 64 hex digits, got `{p}`")
        }
        (None, None) => bail!(
            "no `sha256` or `sha256_prefix`: every file is verified, so every entry needs one"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
