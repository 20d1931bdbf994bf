//! `detect predict`-equivalent inference (transform → backbone + FPN → RPN → RoI heads →
//! boxes in original pixels) on one 800x1333 image, batch 1, f32, CPU, random weights,
//! 91 classes: ours vs torchvision, timed in the same run, interleaved, for each backbone named.
//!
//!     DETECT_PYTHON=/path/to/venv/bin/python \
//!         cargo run --release --example bench_predict -- [PAIRS] [BACKBONE...]
//!
//! Defaults: 5 pairs after one warm-up per side, resnet50 and resnext101_32x4d. torchvision
//! runs `scripts/bench_predict_torch.py --serve` with `$DETECT_PYTHON`, else `python3`, with
//! our thread count; ours runs in the environment the `detect` binary sets for itself.
//! Prints each side's median, the median per-pair ratio ours/torchvision with its min-max, and
//! each side's peak RSS as a fresh child process (build the model, warm up, one image). The
//! image is uniform noise of exactly 800x1333 (the transform's output size for it), so both
//! sides resize it to itself. Random weights make few detections on either side; the RPN's
//! 1000 proposals per level are processed anyway. With `DETECT_BENCH_ONNX=model.onnx` (a
//! `detect export` of the same architecture) ONNX Runtime is timed against ours the same way
//! (`scripts/bench_onnx.py --serve`), after torchvision.
#[path = "common/reference.rs"]
mod reference;

use std::time::Instant;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};
use datasets::image::RgbImage;
use detect::model::config::DetectorConfig;
use detect::model::faster_rcnn::FasterRcnn;
use detect::predict::pipeline::detect_image;

const HEIGHT: usize = 800;
const WIDTH: usize = 1333;

fn noise_image() -> RgbImage {
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
    RgbImage::from_pixels(WIDTH, HEIGHT, pixels).expect("sized pixels")
}

fn build(name: &str) -> anyhow::Result<FasterRcnn> {
    let config = DetectorConfig::from_backbone_name(name, 91)?;
    // Every tensor freshly initialised with torchvision's schemes: no checkpoint needed.
    let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &Device::Cpu);
    Ok(FasterRcnn::new(&config, vb)?)
}

fn main() -> anyhow::Result<()> {
    reference::detect_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pairs: usize = args.first().map_or(Ok(5), |s| s.parse())?;
    let names: Vec<&str> = match args.get(1..) {
        Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
        _ => vec!["resnet50", "resnext101_32x4d"],
    };
    let threads = reference::threads();
    let image = noise_image();
    let dev = Device::Cpu;
    if reference::is_child() {
        // One side of the peak-RSS measurement: what `detect predict` holds for one image.
        let model = build(names[0])?;
        detect_image(&model, &image, &dev)?;
        detect_image(&model, &image, &dev)?;
        return Ok(());
    }
    // Peak RSS of each side before this process builds anything (see peak_rss_pair).
    let mut rss = Vec::new();
    for name in &names {
        let script_args = reference::script_args(name, HEIGHT, WIDTH, 1, threads);
        rss.push(reference::peak_rss_pair(
            &["1".to_string(), name.to_string()],
            "bench_predict_torch.py",
            &script_args,
        )?);
    }
    println!(
        "detect predict equivalent, {HEIGHT}x{WIDTH}, batch 1, f32, CPU, {threads} threads, {pairs} interleaved pairs after a warm-up, load average {}",
        reference::load_average()
    );
    for (name, rss) in names.into_iter().zip(rss) {
        let model = build(name)?;
        let mut count = detect_image(&model, &image, &dev)?.len(); // warm-up
        let script_args = reference::script_args(name, HEIGHT, WIDTH, 1, threads);
        let mut torch = reference::Reference::start("bench_predict_torch.py", &script_args)?;
        let timed = reference::interleave(
            pairs,
            || {
                let t0 = Instant::now();
                count = detect_image(&model, &image, &dev)?.len();
                Ok(t0.elapsed().as_secs_f64())
            },
            &mut torch,
        )?;
        println!("{name:<18} {}", timed.summary("torchvision"));
        println!(
            "{name:<18} detections: ours {count}, torchvision {}",
            torch.info["detections"]
        );
        drop(torch);
        if let Some(onnx) = std::env::var_os("DETECT_BENCH_ONNX") {
            // ONNX Runtime on an exported model of the same architecture (its own random
            // weights: the RPN keeps its 1000 proposals per level either way).
            let onnx_args = [
                onnx.to_string_lossy().into_owned(),
                "1".into(),
                threads.to_string(),
            ];
            let mut ort = reference::Reference::start("bench_onnx.py", &onnx_args)?;
            let timed = reference::interleave(
                pairs,
                || {
                    let t0 = Instant::now();
                    detect_image(&model, &image, &dev)?;
                    Ok(t0.elapsed().as_secs_f64())
                },
                &mut ort,
            )?;
            println!("{name:<18} {}", timed.summary("onnxruntime"));
        }
        if let Some(rss) = rss {
            println!(
                "{name:<18} {}",
                reference::rss_summary("child process, model + warm-up + one image", rss)
            );
        }
    }
    println!("load average at the end {}", reference::load_average());
    Ok(())
}
