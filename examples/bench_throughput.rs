//! `detect predict FOLDER` throughput: the first N images of `coco_val80` (sorted by name)
//! through our pipeline (decoding thread + model, `detect::predict::pipeline`) against
//! torchvision with a 2-worker DataLoader (PIL decode + to_tensor), both with random weights,
//! 91 classes, batch 1, f32, CPU, 2 threads; runs interleaved (ours, torch, ours, torch ...).
//!
//!     cargo run --release --example bench_throughput -- [IMAGES] [PAIRS] [BACKBONE...]
//!
//! Defaults: 8 images, 3 pairs, resnet50 and resnext101_32x4d. The reference runs
//! `scripts/bench_throughput_torch.py` with `$DETECT_PYTHON`, else `python3`. Both sides run one
//! image through the model first (not timed). The images come from `$DETECT_DATA` (default
//! `../shared/data` beside the repository). Prints images/s per run, the per-pair ratio
//! ours/torch of images/s (higher is better), its median and min-max.
use std::path::PathBuf;
use std::process::Command;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};
use datasets::image::DecodeLimits;
use detect::model::config::DetectorConfig;
use detect::model::faster_rcnn::FasterRcnn;
use detect::predict::inputs::image_paths;
use detect::predict::pipeline::{detect_image, predict_files};

/// torchvision's images/s over `images`.
fn torch_rate(name: &str, images: &[PathBuf]) -> anyhow::Result<f64> {
    let python = std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/bench_throughput_torch.py"
    );
    let out = Command::new(&python)
        .args([
            script,
            "--backbone",
            name,
            "--threads",
            "2",
            "--workers",
            "2",
        ])
        .args(images)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {python} (set DETECT_PYTHON): {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{python} {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let seconds = json["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(images.len() as f64 / seconds)
}

/// Our images/s over `images`, as `detect predict` runs them.
fn our_rate(model: &FasterRcnn, images: &[PathBuf]) -> anyhow::Result<f64> {
    let limits = DecodeLimits::default();
    let throughput = predict_files(model, images, &limits, &Device::Cpu, |_, r| r.map(drop))?;
    Ok(throughput.images_per_second())
}

fn main() -> anyhow::Result<()> {
    // The environment the `detect` binary sets for itself (src/main.rs).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: usize = args.first().map_or(Ok(8), |s| s.parse())?;
    let pairs: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let names: Vec<&str> = match args.get(2..) {
        Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
        _ => vec!["resnet50", "resnext101_32x4d"],
    };
    let data = std::env::var("DETECT_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data").into());
    let folder = PathBuf::from(data).join("coco_val80/images");
    let mut images = image_paths(&[folder])?;
    images.truncate(count);
    println!(
        "predict throughput: {} images of coco_val80, random weights, batch 1, f32, CPU, \
         2 threads, {pairs} interleaved pairs; load average {}",
        images.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for name in names {
        let config = DetectorConfig::from_backbone_name(name, 91)?;
        let vb =
            CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &Device::Cpu);
        let model = FasterRcnn::new(&config, vb)?;
        let first = datasets::image::load_rgb(&images[0])?;
        detect_image(&model, &first, &Device::Cpu)?; // warm-up, not timed
        let mut ratios = Vec::new();
        for pair in 0..pairs {
            let ours = our_rate(&model, &images)?;
            let torch = torch_rate(name, &images)?;
            println!(
                "{name:<18} pair {pair}: ours {ours:.4} images/s, torchvision {torch:.4} images/s, \
                 ratio {:.3}",
                ours / torch
            );
            ratios.push(ours / torch);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name:<18} median ratio ours/torchvision images/s: {:.3} (min {:.3}, max {:.3}; \
             higher is better)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    println!(
        "load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}
