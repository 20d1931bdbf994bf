//! Seconds per training step (forward with the four losses, backward, SGD momentum 0.9 / weight
//! decay 1e-4) of Faster R-CNN (default resnext101_32x4d-FPN) at 800x1333, f32, CPU, random
//! weights, trainable_layers 3: ours vs torchvision, timed in the same run, interleaved.
//!
//!     DETECT_PYTHON=/path/to/venv/bin/python \
//!         cargo run --release --example bench_train -- [BACKBONE] [HEIGHT] [WIDTH] [PAIRS] [BATCH]
//!
//! torchvision runs `scripts/bench_train_torch.py --serve` with `$DETECT_PYTHON`, else
//! `python3`, with our thread count; ours runs in the environment the `detect` binary sets for
//! itself. Each side warms up with one step, then PAIRS (default 3) steps each, alternating;
//! prints the medians, the median per-pair ratio ours/torchvision and its min-max, then each
//! side's peak RSS as a fresh child process (build, warm-up step, one step). BATCH (default 1)
//! copies of the image per step. A step takes tens of seconds on 2 cores.
#[path = "common/reference.rs"]
mod reference;

use std::time::Instant;

use candle_core::{Device, Tensor};
use detect::model::config::DetectorConfig;
use detect::train::solver::Sgd;
use detect::train::step::build_model;
use heads::roi_heads::Target;

/// Ground truth of the benchmark image (xyxy pixels, COCO labels), as in the python script.
const BOXES: [[f32; 4]; 3] = [
    [100., 120., 500., 600.],
    [700., 200., 1100., 500.],
    [300., 550., 420., 760.],
];
const LABELS: [u32; 3] = [1, 18, 62];

fn main() -> anyhow::Result<()> {
    reference::detect_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1333), |s| s.parse())?;
    let pairs: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let batch: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let threads = reference::threads();
    let dev = Device::Cpu;

    let mut script_args = reference::script_args(name, h, w, 1, threads);
    script_args.extend(["--batch".to_string(), batch.to_string()]);
    // Before anything is built (see peak_rss_pair).
    let rss = reference::peak_rss_pair(&args, "bench_train_torch.py", &script_args)?;
    let config = DetectorConfig::from_backbone_name(name, 91)?;
    let (model, params) = build_model(&config, Default::default(), 0, &dev)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    // The loader pads to a multiple of 32; the images themselves are h x w.
    let (ph, pw) = (h.div_ceil(32) * 32, w.div_ceil(32) * 32);
    let image = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?
        .pad_with_zeros(2, 0, ph - h)?
        .pad_with_zeros(3, 0, pw - w)?;
    let images = Tensor::cat(&vec![&image; batch], 0)?;
    let sizes = vec![(h, w); batch];
    let targets: Vec<Target> = (0..batch)
        .map(|_| -> candle_core::Result<Target> {
            Ok(Target {
                boxes: Tensor::new(&BOXES, &dev)?,
                labels: Tensor::new(&LABELS, &dev)?,
            })
        })
        .collect::<candle_core::Result<_>>()?;
    let mut iteration = 0u64;
    let mut step = || -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let losses = model.losses(&images, &sizes, &targets, iteration, 0)?;
        let grads = losses.total()?.backward()?;
        sgd.step(&grads, 1e-4)?;
        iteration += 1;
        Ok(t0.elapsed().as_secs_f64())
    };
    step()?; // warm-up
    if reference::is_child() {
        step()?; // one side of the peak-RSS measurement
        return Ok(());
    }
    println!(
        "{name} Faster R-CNN training step {h}x{w} (padded {ph}x{pw}), batch {batch}, f32, CPU, {threads} threads, {} trained tensors, load average {}",
        params.trainable().len(),
        reference::load_average()
    );
    let mut torch = reference::Reference::start("bench_train_torch.py", &script_args)?;
    let timed = reference::interleave(pairs, step, &mut torch)?;
    drop(torch);
    println!("{}", timed.summary("torchvision"));
    if let Some(rss) = rss {
        println!(
            "{}",
            reference::rss_summary("child process, build + warm-up step + one step", rss)
        );
    }
    println!("load average at the end {}", reference::load_average());
    Ok(())
}
