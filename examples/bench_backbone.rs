//! resnext101_32x4d backbone + FPN forward at 800x1216 (batch 1, f32, CPU, random weights):
//! ours vs torchvision, measured in the same run.
//!
//!     cargo run --release --example bench_backbone -- [BACKBONE] [HEIGHT] [WIDTH] [ITERS]
//!
//! torchvision runs `scripts/bench_backbone_torch.py` with `$DETECT_PYTHON`, else
//! `/work/venv/bin/python`; both sides use as many threads as
//! candle does (rayon's pool). Times are medians of ITERS runs after one warm-up; ours is
//! timed before and after torch (sandwich) so that a change in machine load during the run
//! biases neither side. On a shared machine the ratio is still noisy: run it on a quiet one.
#[path = "common/reference.rs"]
mod reference;

use reference::median;
use std::time::Instant;

use backbones::{BackboneConfig, BackboneWithFpn, CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1216), |s| s.parse())?;
    let iters: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let threads = candle_core::utils::get_num_threads();

    let dev = Device::Cpu;
    let config = BackboneConfig::from_name(name)?;
    // Every tensor freshly initialised (torchvision's schemes): the timing needs no checkpoint.
    let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &dev);
    let model = BackboneWithFpn::new(&config, vb)?;
    let x = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?;
    model.forward(&x)?; // warm-up
    let mut times = Vec::new();
    for _ in 0..iters {
        let t0 = Instant::now();
        let p = model.forward(&x)?;
        p[0].sum_all()?.to_scalar::<f32>()?; // make sure the work is done
        times.push(t0.elapsed().as_secs_f64());
    }
    let ours = median(times);
    println!("{name} backbone+FPN forward {h}x{w}, batch 1, f32, CPU, {threads} threads");
    println!("ours:                 {ours:8.3} s (median of {iters})");
    // Ours again after torch: a change in machine load during the run biases neither side.
    let torch =
        reference::reference_seconds("bench_backbone_torch.py", name, h, w, iters, threads)?;
    let mut again = Vec::new();
    for _ in 0..iters {
        let t0 = Instant::now();
        model.forward(&x)?[0].sum_all()?.to_scalar::<f32>()?;
        again.push(t0.elapsed().as_secs_f64());
    }
    let ours_after = median(again);
    let ours_mean = (ours + ours_after) / 2.0;
    println!("torchvision:          {torch:8.3} s (median of {iters}, run between ours)");
    println!("ours after torch:     {ours_after:8.3} s");
    println!(
        "ratio ours/torch:     {:8.2}x (ours = mean of before and after)",
        ours_mean / torch
    );
    Ok(())
}
