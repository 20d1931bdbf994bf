//! `detect export --weights MODEL --output model.onnx [--opset N]`: the whole detector as one
//! ONNX graph ([`crate::export`]), written atomically; prints the file's size and SHA-256.
//! `--random-init --backbone NAME` exports seeded random weights instead (benchmarks, tests).
use anyhow::Context;
use backbones::WeightMap;
use candle_core::Device;
use datasets::coco::CategoryMap;
use sha2::{Digest, Sha256};

use crate::cli::ExportArgs;
use crate::export::export_detector;
use crate::model::config::DetectorConfig;
use crate::weights::load::{load_detector, read_weight_map};
use crate::weights::random::random_detector_weights;

/// Runs `detect export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let device = Device::Cpu;
    let (config, labels, weights, source) = match (&args.weights, args.random_init) {
        (Some(path), false) => {
            // Loading first checks every key and shape, as `detect predict` does.
            let resolved = crate::weights::resolve::ResolvedWeights::file(path.clone());
            let loaded = load_detector(&resolved, args.backbone.as_deref(), None, &device)?;
            let config = loaded.model.config().clone();
            let map = read_weight_map(path, &device)?;
            (config, loaded.labels, map, format!("`{}`", path.display()))
        }
        (None, true) => {
            let name = args
                .backbone
                .as_deref()
                .context("--random-init needs --backbone NAME")?;
            anyhow::ensure!(
                args.num_classes >= 2,
                "--num-classes must be at least 2 (background included), got {}",
                args.num_classes
            );
            let config = DetectorConfig::from_backbone_name(name, args.num_classes)?;
            let tensors = random_detector_weights(&config, args.seed)?;
            let labels = CategoryMap::for_num_classes(args.num_classes);
            let source = format!("random weights (seed {})", args.seed);
            (config, labels, WeightMap::new(tensors), source)
        }
        _ => anyhow::bail!("pass exactly one of --weights FILE and --random-init"),
    };
    let bytes = export_detector(&config, &labels, weights, args.opset)
        .with_context(|| format!("exporting {source}"))?;
    crate::atomic::write_atomic(&args.output, &bytes)
        .with_context(|| format!("writing `{}`", args.output.display()))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    eprintln!(
        "exported {} Faster R-CNN ({} classes) from {source}, opset {}",
        config.backbone_name, config.num_classes, args.opset
    );
    println!(
        "{}  {} bytes  sha256 {hex}",
        args.output.display(),
        bytes.len()
    );
    Ok(())
}
