//! `detect predict`-equivalent inference (transform → backbone + FPN → RPN → RoI heads →
//! boxes in original pixels) on one 800x1333 image, batch 1, f32, CPU, random weights,
//! 91 classes: ours vs torchvision, measured in the same run, for each backbone named.
//!
//!     cargo run --release --example bench_predict -- [ITERS] [BACKBONE...]
//!
//! Defaults: 1 iteration after one warm-up, resnet50 and resnext101_32x4d. torchvision runs
//! `scripts/bench_predict_torch.py` with `$DETECT_PYTHON`, else `/work/venv/bin/python`; both
//! sides use candle's thread count. The image is uniform noise of exactly 800x1333 (the
//! transform's output size for it), so both sides resize it to itself. Random weights make
//! few detections on either side; the RPN's 1000 proposals per level are processed anyway.
#[path = "common/reference.rs"]
mod reference;

use reference::median;
use std::time::Instant;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};
use datasets::image::RgbImage;
use detect::commands::predict::detect_image;
use detect::model::config::DetectorConfig;
use detect::model::faster_rcnn::FasterRcnn;

const HEIGHT: usize = 800;
const WIDTH: usize = 1333;

/// torchvision's median time and its detection count.
fn torch_seconds(name: &str, iters: usize, threads: usize) -> anyhow::Result<(f64, u64)> {
    let args = reference::script_args(name, HEIGHT, WIDTH, iters, threads);
    let json = reference::run_script("bench_predict_torch.py", &args)?;
    Ok((
        reference::median_seconds(&json)?,
        json["detections"].as_u64().unwrap_or(0),
    ))
}

/// Our median time for one image through `detect_image`, and its detection count.
fn ours_seconds(name: &str, iters: usize, image: &RgbImage) -> anyhow::Result<(f64, usize)> {
    let dev = Device::Cpu;
    let config = DetectorConfig::from_backbone_name(name, 91)?;
    // Every tensor freshly initialised with torchvision's schemes: no checkpoint needed.
    let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &dev);
    let model = FasterRcnn::new(&config, vb)?;
    let mut count = detect_image(&model, image, &dev)?.len(); // warm-up
    let mut times = Vec::new();
    for _ in 0..iters {
        let t0 = Instant::now();
        count = detect_image(&model, image, &dev)?.len();
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok((median(times), count))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters: usize = args.first().map_or(Ok(1), |s| s.parse())?;
    let names: Vec<&str> = match args.get(1..) {
        Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
        _ => vec!["resnet50", "resnext101_32x4d"],
    };
    let threads = candle_core::utils::get_num_threads();
    // Uniform noise, as the torch side (a fixed LCG: no dependency needed).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels = (0..HEIGHT * WIDTH * 3)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    let image = RgbImage::from_pixels(WIDTH, HEIGHT, pixels).expect("sized pixels");
    println!("detect predict equivalent, {HEIGHT}x{WIDTH}, batch 1, f32, CPU, {threads} threads, {iters} iteration(s) after a warm-up");
    for name in names {
        let (ours, count) = ours_seconds(name, iters, &image)?;
        println!("{name:<18} ours (candle):   {ours:8.2} s  ({count} detections)");
        match torch_seconds(name, iters, threads) {
            Ok((torch, torch_count)) => {
                println!("{name:<18} torchvision:     {torch:8.2} s  ({torch_count} detections)");
                println!("{name:<18} ratio ours/torch: {:7.2}x", ours / torch);
            }
            Err(e) => println!("{name:<18} torchvision: failed: {e:#}"),
        }
    }
    Ok(())
}
