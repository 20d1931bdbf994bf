//! Quick CPU timing of the step path, no reference side: seconds per `shapes` training step
//! (160x160, batch 2, the built-in small ResNeXt-FPN) and per X101-32x4d-FPN inference forward
//! (800x1333, batch 1, random weights, built as `detect predict` builds it: plain tensors, so
//! the inference kernels), median of N runs after one warm-up each. BACKBONE (default
//! `resnext101_32x4d`) picks the inference model, e.g. `resnet50`.
//!
//!     cargo run --release --example time_step -- [STEPS] [FORWARDS] [BACKBONE]
//!
//! Meant for before/after comparisons of two builds run alternately (issue 12).
use std::time::Instant;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};
use detect::model::config::{DetectorConfig, SHAPES_BACKBONE};
use detect::model::faster_rcnn::FasterRcnn;
use detect::train::solver::Sgd;
use detect::train::step::build_model;
use heads::roi_heads::Target;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    detect::process::configure(); // as the `detect` binary
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: usize = args.first().map_or(Ok(5), |s| s.parse())?;
    let forwards: usize = args.get(1).map_or(Ok(2), |s| s.parse())?;
    let backbone = args.get(2).map_or("resnext101_32x4d", String::as_str);
    let dev = Device::Cpu;

    let config = DetectorConfig::from_backbone_name(SHAPES_BACKBONE, 4)?;
    let (model, params) = build_model(&config, Default::default(), 0, &dev)?;
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
    let images = Tensor::randn(0f32, 1.0, (2, 3, 160, 160), &dev)?;
    let sizes = vec![(160, 160); 2];
    let boxes = [[10f32, 20., 60., 80.], [90., 40., 150., 120.]];
    let targets: Vec<Target> = (0..2)
        .map(|_| -> candle_core::Result<Target> {
            Ok(Target {
                boxes: Tensor::new(&boxes, &dev)?,
                labels: Tensor::new(&[1u32, 3], &dev)?,
            })
        })
        .collect::<candle_core::Result<_>>()?;
    let mut times = Vec::new();
    for i in 0..=steps {
        let t0 = Instant::now();
        let losses = model.losses(&images, &sizes, &targets, i as u64, 0)?;
        let grads = losses.total()?.backward()?;
        sgd.step(&grads, 1e-3)?;
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    if steps > 0 {
        println!(
            "shapes train step: median {:.4} s of {steps}",
            median(times)
        );
    }

    if forwards > 0 {
        let config = DetectorConfig::from_backbone_name(backbone, 91)?;
        // Every tensor freshly initialised, none a `Var`: the path of `detect predict`.
        let vb = CheckedWeights::new(WeightMap::default(), &[""]).var_builder(DType::F32, &dev);
        let model = FasterRcnn::new(&config, vb)?;
        let image = Tensor::randn(0f32, 1.0, (1, 3, 800, 1344), &dev)?;
        let mut times = Vec::new();
        for i in 0..=forwards {
            let t0 = Instant::now();
            let d = model.detect(&image, &[(800, 1333)], &[(800, 1333)])?;
            std::hint::black_box(d);
            if i > 0 {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        println!(
            "{backbone} forward: median {:.4} s of {forwards}",
            median(times)
        );
    }
    Ok(())
}
