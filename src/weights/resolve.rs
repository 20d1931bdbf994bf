//! From a `--weights` / `--backbone-weights` value to a file on disk: a path is used as is; a
//! registry name is looked up ([`crate::weights::registry`]), refused when it names an
//! architecture detect does not build or the wrong kind of weights, then fetched
//! ([`crate::weights::download`]).
use std::path::PathBuf;

use anyhow::bail;

use crate::weights::download::fetch;
use crate::weights::registry::{Registry, RegistryEntry, WeightsKind, WeightsRef};

/// A weights file and, for a registry name, its entry.
#[derive(Debug, Clone)]
pub struct ResolvedWeights {
    pub path: PathBuf,
    /// `(name, entry)` when the file came from the registry.
    pub registry: Option<(String, RegistryEntry)>,
}

impl ResolvedWeights {
    pub fn file(path: PathBuf) -> Self {
        Self {
            path,
            registry: None,
        }
    }
}

/// The registry entry `name` of kind `want`, checked (no download).
pub fn registry_entry(name: &str, want: WeightsKind) -> anyhow::Result<RegistryEntry> {
    let registry = Registry::load()?;
    let entry = registry.entry(name)?;
    entry.check_supported(name)?;
    if entry.kind != want {
        let (what, option) = match entry.kind {
            WeightsKind::Detector => ("a whole detector", "--weights"),
            WeightsKind::Backbone => ("ImageNet backbone weights", "--backbone-weights"),
        };
        bail!("`{name}` is {what}: use it with {option} {name}");
    }
    Ok(entry.clone())
}

/// Resolves `value` to a file, downloading a registry name's file if it is not cached.
pub fn resolve(value: &WeightsRef, want: WeightsKind) -> anyhow::Result<ResolvedWeights> {
    match value {
        WeightsRef::File(path) => {
            if !path.is_file() {
                bail!(
                    "weights file `{}` does not exist\nhint: registry names look like \
                     `torchvision:fasterrcnn_resnet50_fpn`",
                    path.display()
                );
            }
            Ok(ResolvedWeights::file(path.clone()))
        }
        WeightsRef::Name(name) => {
            let entry = registry_entry(name, want)?;
            let path = fetch(name, &entry)?;
            Ok(ResolvedWeights {
                path,
                registry: Some((name.clone(), entry)),
            })
        }
    }
}
