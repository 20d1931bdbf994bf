//! `detect info`: parameters and multiply-add FLOPs of a backbone, counted from the
//! architecture (no weights, no tensors).
use backbones::flops::{backbone_fpn_cost, classification_cost};
use backbones::ResNextConfig;
use serde::Serialize;

use crate::cli::InfoArgs;

/// FPN width of every torchvision detector.
const FPN_CHANNELS: usize = 256;

/// What `detect info --json` prints (keys fixed by issue 2).
#[derive(Debug, Serialize)]
pub struct BackboneInfo {
    /// The architecture name as given.
    pub backbone: String,
    /// Parameters of the ImageNet classifier (conv, BN affine, 1000-way fc), as torchvision counts.
    pub params: u64,
    /// Multiply-add GFLOPs of the classifier at 224x224.
    pub gflops_224: f64,
    /// Multiply-add GFLOPs of backbone + FPN (no fc) at `height x width`.
    pub fpn_gflops: f64,
    pub height: usize,
    pub width: usize,
}

/// Counts for `name` at `height x width`.
pub fn backbone_info(name: &str, height: usize, width: usize) -> anyhow::Result<BackboneInfo> {
    let cfg = ResNextConfig::from_name(name)?;
    anyhow::ensure!(
        height >= 32 && width >= 32,
        "--height and --width must be at least 32, got {height}x{width}"
    );
    let classifier = classification_cost(&cfg, 224, 224);
    let detector = backbone_fpn_cost(&cfg, FPN_CHANNELS, height, width);
    Ok(BackboneInfo {
        backbone: name.to_string(),
        params: classifier.params,
        gflops_224: round(classifier.macs as f64 / 1e9),
        fpn_gflops: round(detector.macs as f64 / 1e9),
        height,
        width,
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs `detect info`.
pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let info = backbone_info(&args.backbone, args.height, args.width)?;
    if args.json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    let cfg = ResNextConfig::from_name(&args.backbone)?;
    println!("backbone            {}", info.backbone);
    println!(
        "layers              {:?}, cardinality {}, width {}d",
        cfg.layers, cfg.groups, cfg.width_per_group
    );
    println!(
        "params (classifier) {} ({:.1}M)",
        info.params,
        info.params as f64 / 1e6
    );
    println!("GFLOPs at 224x224   {:.2} (multiply-adds)", info.gflops_224);
    println!(
        "GFLOPs backbone+FPN {:.2} at {}x{}",
        info.fpn_gflops, info.height, info.width
    );
    Ok(())
}

#[cfg(test)]
mod tests;
