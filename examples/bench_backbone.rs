//! Backbone + FPN forward (default resnext101_32x4d at 800x1216, batch 1, f32, CPU, random
//! weights): ours vs torchvision, timed in the same run, interleaved.
//!
//!     DETECT_PYTHON=/path/to/venv/bin/python \
//!         cargo run --release --example bench_backbone -- [BACKBONE] [HEIGHT] [WIDTH] [PAIRS]
//!
//! torchvision runs `scripts/bench_backbone_torch.py --serve` with `$DETECT_PYTHON`, else
//! `python3`, with our thread count; ours runs in the environment the `detect` binary sets for
//! itself. Prints each side's median of PAIRS (default 5) repetitions after one warm-up, the
//! median per-pair ratio ours/torchvision and its min-max, and each side's peak RSS as a fresh
//! child process.
#[path = "common/reference.rs"]
mod reference;

use std::time::Instant;

use backbones::{BackboneConfig, BackboneWithFpn, CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};

fn main() -> anyhow::Result<()> {
    reference::detect_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1216), |s| s.parse())?;
    let pairs: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let threads = reference::threads();

    let script_args = reference::script_args(name, h, w, 1, threads);
    // Before anything is built (see peak_rss_pair).
    let rss = reference::peak_rss_pair(&args, "bench_backbone_torch.py", &script_args)?;
    let dev = Device::Cpu;
    let config = BackboneConfig::from_name(name)?;
    // Every tensor freshly initialised (torchvision's schemes): the timing needs no checkpoint.
    let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &dev);
    let model = BackboneWithFpn::new(&config, vb)?;
    let x = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?;
    let forward = || -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let p = model.forward(&x)?;
        p[0].sum_all()?.to_scalar::<f32>()?; // make sure the work is done
        Ok(t0.elapsed().as_secs_f64())
    };
    forward()?; // warm-up
    if reference::is_child() {
        forward()?; // one side of the peak-RSS measurement
        return Ok(());
    }
    println!(
        "{name} backbone+FPN forward {h}x{w}, batch 1, f32, CPU, {threads} threads, load average {}",
        reference::load_average()
    );
    let mut torch = reference::Reference::start("bench_backbone_torch.py", &script_args)?;
    let timed = reference::interleave(pairs, forward, &mut torch)?;
    drop(torch);
    println!("{}", timed.summary("torchvision"));
    if let Some(rss) = rss {
        println!(
            "{}",
            reference::rss_summary("child process, model + warm-up + one forward", rss)
        );
    }
    println!("load average at the end {}", reference::load_average());
    Ok(())
}
