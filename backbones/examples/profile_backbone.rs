//! Where the backbone + FPN forward spends its time: stem, layer1..4, FPN (batch 1, f32, CPU,
//! random weights), ours and, when `--torch` is given, torchvision's per stage, interleaved
//! (ours, torch, ours, torch, ...): median ratio per stage and the min-max of per-pair ratios.
//!
//!     DETECT_PYTHON=/path/to/python cargo run --release -p backbones --example profile_backbone \
//!         -- [BACKBONE] [HEIGHT] [WIDTH] [PAIRS] [--torch]
//!
//! torchvision runs `profile_backbone_torch.py` beside this file with `$DETECT_PYTHON`, else
//! `python3`, with as many threads as candle uses.
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use backbones::{BackboneConfig, BackboneWithFpn, CheckedWeights, WeightMap};
use candle_core::{DType, Device, Result, Tensor};

const STAGES: [&str; 7] = [
    "stem", "layer1", "layer2", "layer3", "layer4", "fpn", "total",
];

/// One forward, each stage timed (seconds, in `STAGES` order).
fn forward_timed(model: &BackboneWithFpn, x: &Tensor) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(7);
    let t = Instant::now();
    let mut y = model.body.forward_stem(x)?;
    times.push(t.elapsed().as_secs_f64());
    let mut feats = Vec::with_capacity(4);
    for stage in 0..4 {
        let t = Instant::now();
        y = model.body.forward_stage(stage, &y)?;
        times.push(t.elapsed().as_secs_f64());
        feats.push(y.clone());
    }
    let t = Instant::now();
    let p = model.fpn.forward(&feats)?;
    p[4].sum_all()?.to_scalar::<f32>()?;
    times.push(t.elapsed().as_secs_f64());
    times.push(times.iter().sum());
    Ok(times)
}

/// torchvision's per-stage seconds of one iteration (`profile_backbone_torch.py`).
fn torch_timed(name: &str, h: usize, w: usize, threads: usize) -> anyhow::Result<Vec<f64>> {
    let python = std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/profile_backbone_torch.py"
    );
    let out = Command::new(&python)
        .args([script, "--backbone", name, "--iters", "1"])
        .args(["--height", &h.to_string(), "--width", &w.to_string()])
        .args(["--threads", &threads.to_string()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{python} {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: BTreeMap<String, Vec<f64>> = serde_json::from_slice(&out.stdout)?;
    STAGES
        .iter()
        .map(|s| {
            json.get(*s)
                .and_then(|v| v.first().copied())
                .ok_or_else(|| anyhow::anyhow!("no {s} in the output"))
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--torch")
        .collect();
    let with_torch = std::env::args().any(|a| a == "--torch");
    let name = args.first().map_or("resnext101_32x4d", |s| s.as_str());
    let h: usize = args.get(1).map_or(Ok(800), |s| s.parse())?;
    let w: usize = args.get(2).map_or(Ok(1216), |s| s.parse())?;
    let pairs: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let threads = candle_core::utils::get_num_threads();
    let dev = Device::Cpu;
    let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &dev);
    let model = BackboneWithFpn::new(&BackboneConfig::from_name(name)?, vb)?;
    let x = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?;
    forward_timed(&model, &x)?; // warm-up
    println!("{name} backbone+FPN {h}x{w}, batch 1, f32, CPU, {threads} threads, {pairs} runs");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        ours.push(forward_timed(&model, &x)?);
        if with_torch {
            theirs.push(torch_timed(name, h, w, threads)?);
        }
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", loadavg.trim());
    for (i, stage) in STAGES.iter().enumerate() {
        let o = median(ours.iter().map(|t| t[i]).collect());
        if !with_torch {
            println!("{stage:>7}: ours {o:7.3} s");
            continue;
        }
        let t = median(theirs.iter().map(|t| t[i]).collect());
        let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a[i] / b[i]).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), r| (l.min(*r), h.max(*r)));
        println!("{stage:>7}: ours {o:7.3} s  torch {t:7.3} s  ratio median {:5.2}x  (per pair {lo:.2}-{hi:.2})", median(ratios.clone()));
    }
    Ok(())
}
