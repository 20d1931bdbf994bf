//! `detect predict FOLDER` throughput: the first N images of `coco_val80` (sorted by name)
//! through our pipeline (decoding thread + model, `detect::predict::pipeline`) against
//! torchvision with a 2-worker DataLoader (PIL decode + to_tensor), both with random weights,
//! 91 classes, batch 1, f32, CPU, rayon's thread count on both sides; runs interleaved (ours,
//! torch, ours, torch ...).
//!
//!     cargo run --release --example bench_throughput -- [IMAGES] [PAIRS] [BACKBONE...]
//!
//! Defaults: 8 images, 3 pairs, resnet50 and resnext101_32x4d. The reference runs
//! `scripts/bench_throughput_torch.py` with `$DETECT_PYTHON`, else `python3`. Both sides run one
//! image through the model first (not timed). The images come from `$DETECT_DATA` (default
//! `../shared/data` beside the repository). Prints images/s per run, the per-pair ratio
//! ours/torch of images/s (higher is better), its median and min-max.
#[path = "common/reference.rs"]
mod reference;

use std::path::PathBuf;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};
use datasets::image::DecodeLimits;
use detect::model::config::DetectorConfig;
use detect::model::faster_rcnn::FasterRcnn;
use detect::predict::inputs::image_paths;
use detect::predict::pipeline::{detect_image, predict_files};

/// torchvision's images/s over `images`.
fn torch_rate(name: &str, images: &[PathBuf]) -> anyhow::Result<f64> {
    let threads = reference::threads().to_string();
    let mut args: Vec<String> = ["--backbone", name, "--threads", &threads, "--workers", "2"]
        .map(String::from)
        .to_vec();
    args.extend(images.iter().map(|p| p.to_string_lossy().into_owned()));
    let json = reference::run_script("bench_throughput_torch.py", &args)?;
    let seconds = json["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(images.len() as f64 / seconds)
}

/// Our images/s over `images`, as `detect predict` runs them.
fn our_rate(model: &FasterRcnn, images: &[PathBuf]) -> anyhow::Result<f64> {
    let limits = DecodeLimits::default();
    let throughput = predict_files(model, images, &limits, &Device::Cpu, false, |_, r| {
        r.map(drop)
    })?;
    Ok(throughput.images_per_second())
}

fn main() -> anyhow::Result<()> {
    reference::detect_env();
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
         {} threads, {pairs} interleaved pairs; load average {}",
        images.len(),
        reference::threads(),
        reference::load_average()
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
            // Which side goes first alternates, so a load change biases neither.
            let (ours, torch) = if pair % 2 == 0 {
                let ours = our_rate(&model, &images)?;
                (ours, torch_rate(name, &images)?)
            } else {
                let torch = torch_rate(name, &images)?;
                (our_rate(&model, &images)?, torch)
            };
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
    println!("load average at the end: {}", reference::load_average());
    Ok(())
}
