//! Seconds per training step (forward with the four losses, backward, SGD momentum 0.9 / weight
//! decay 1e-4) of Faster R-CNN resnext101_32x4d-FPN at 800x1333, batch 1, f32, CPU, random
//! weights, trainable_layers 3: ours vs torchvision, measured in the same run.
//!
//!     cargo run --release --example bench_train -- [BACKBONE] [HEIGHT] [WIDTH] [ITERS]
//!
//! torchvision runs `scripts/bench_train_torch.py` with `$DETECT_PYTHON`, else
//! `/work/venv/bin/python`; both sides use candle's thread count. Each side times ITERS steps
//! (default 2) after one warm-up step; the median is reported. A step takes tens of seconds on
//! 2 cores: run it once, on a quiet machine.
//!
//! Measured 2026-11-28 (2 threads, a shared machine at load ~7): ours 67.4 s/iteration,
//! torchvision 51.2 s/iteration, ratio 1.32x.
#[path = "common/reference.rs"]
mod reference;

use reference::median;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1333), |s| s.parse())?;
    let iters: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let threads = candle_core::utils::get_num_threads();
    let dev = Device::Cpu;

    let config = DetectorConfig::from_backbone_name(name, 91)?;
    let (model, params) = build_model(&config, Default::default(), 0, &dev)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    // The loader pads to a multiple of 32; the image itself is h x w.
    let (ph, pw) = (h.div_ceil(32) * 32, w.div_ceil(32) * 32);
    let images = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?
        .pad_with_zeros(2, 0, ph - h)?
        .pad_with_zeros(3, 0, pw - w)?;
    let targets = [Target {
        boxes: Tensor::new(&BOXES, &dev)?,
        labels: Tensor::new(&LABELS, &dev)?,
    }];
    let mut step = |iteration: u64| -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let losses = model.losses(&images, &[(h, w)], &targets, iteration)?;
        let grads = losses.total()?.backward()?;
        sgd.step(&grads, 1e-4)?;
        Ok(t0.elapsed().as_secs_f64())
    };
    let warm = step(0)?;
    let times = (1..=iters as u64)
        .map(&mut step)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ours = median(times.clone());
    println!("{name} Faster R-CNN training step {h}x{w} (padded {ph}x{pw}), batch 1, f32, CPU, {threads} threads");
    println!(
        "ours (candle):        {ours:8.2} s/iteration (warm-up {warm:.2} s, steps {times:.2?})"
    );
    println!(
        "{} trained tensors, dtype {:?}",
        params.trainable().len(),
        DType::F32
    );
    match reference::reference_seconds("bench_train_torch.py", name, h, w, iters, threads) {
        Ok(torch) => {
            println!("torchvision:          {torch:8.2} s/iteration");
            println!("ratio ours/torch:     {:8.2}x", ours / torch);
        }
        Err(e) => println!("torchvision:          not run: {e:#}"),
    }
    Ok(())
}
