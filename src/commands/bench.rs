//! `detect bench` (hidden): our side of the GPU benchmarks of `scripts/gpu_bench.py` (issue
//! 12), also runnable on the CPU. One model with random weights (seed 0) under `--precision`:
//!
//! - `--task predict`: the inference model built as `detect predict` builds it (plain tensors
//!   through `CheckedWeights`), on a batch of noise images of exactly HEIGHT x WIDTH, padded to
//!   a multiple of 32 as the loader pads;
//! - `--task train`: the training model (trainable layers 3, as torchvision's default), three
//!   ground-truth boxes per image, forward with the four losses, backward, SGD momentum 0.9 /
//!   weight decay 1e-4, and the total loss read once (the step's one scalar read).
//!
//! WARMUP untimed iterations, then ITERS timed ones, each ending with the device synchronised.
//! Prints one JSON line: the per-iteration seconds, their median and the images per second at
//! the median. `--weights-out FILE` writes the weights first (torchvision's names), so that
//! the reference side runs the same network. `--profile` adds one more iteration, after the
//! timed ones, with the stage times and transfers of `--profile` on train/predict.
use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Context};
use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device, Tensor};

use crate::cli::{BenchArgs, BenchTask};
use crate::commands::parse_device;
use crate::model::config::DetectorConfig;
use crate::model::faster_rcnn::FasterRcnn;
use crate::profile::{Stage, StageClock};
use crate::train::solver::Sgd;
use crate::train::step::build_model;
use heads::ops::transfer;
use heads::roi_heads::Target;

/// Ground truth of every benchmark image (xyxy pixels in an 800x1333 frame, COCO labels), as
/// in `scripts/bench_gpu_torch.py` (scaled to the image size there and here).
const BOXES: [[f32; 4]; 3] = [
    [100., 120., 500., 600.],
    [700., 200., 1100., 500.],
    [300., 550., 420., 760.],
];
const LABELS: [u32; 3] = [1, 18, 62];

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.iters == 0 {
        bail!("--batch and --iters must be at least 1");
    }
    if args.height < 32 || args.width < 32 {
        bail!(
            "--height and --width must be at least 32, got {}x{}",
            args.height,
            args.width
        );
    }
    let device = parse_device(&args.device)?;
    args.precision.apply();
    let config = DetectorConfig::from_backbone_name(&args.backbone, 91)?;
    // Random weights, seed 0, through the training store (it knows every tensor's init).
    let (train_model, params) = build_model(&config, Default::default(), 0, &device)?;
    let state: HashMap<String, Tensor> = params.state_dict().into_iter().collect();
    if let Some(path) = &args.weights_out {
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(&state, &tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let (h, w) = (args.height, args.width);
    let (ph, pw) = (h.div_ceil(32) * 32, w.div_ceil(32) * 32);
    let images = Tensor::rand(0f32, 1.0, (args.batch, 3, h, w), &Device::Cpu)?
        .pad_with_zeros(2, 0, ph - h)?
        .pad_with_zeros(3, 0, pw - w)?
        .to_device(&device)?;
    let sizes = vec![(h, w); args.batch];
    let targets = targets(h, w, args.batch, &device)?;
    let iteration = |model: &FasterRcnn,
                     sgd: Option<&mut Sgd>,
                     i: u64,
                     clock: &mut StageClock|
     -> anyhow::Result<()> {
        match sgd {
            None => {
                std::hint::black_box(model.detect_timed(&images, &sizes, &sizes, clock)?);
            }
            Some(sgd) => {
                let losses = model.losses_timed(&images, &sizes, &targets, i, 0, clock)?;
                let total = losses.total()?;
                let value: f64 = transfer::read_scalar(
                    "losses: total (non-finite check)",
                    &total.to_dtype(DType::F64)?,
                )?;
                if !value.is_finite() {
                    bail!("non-finite loss {value} at benchmark iteration {i}");
                }
                let grads = total.backward()?;
                clock.lap(Stage::Backward)?;
                sgd.step(&grads, 1e-4)?;
                clock.lap(Stage::Optimizer)?;
            }
        }
        device.synchronize()?;
        Ok(())
    };
    // The model `detect predict` loads (plain tensors) or the training one, with its SGD.
    let (mut model, mut sgd) = match args.task {
        BenchTask::Predict => {
            drop((train_model, params));
            let checked = CheckedWeights::new(WeightMap::new(state), &[]);
            let model = FasterRcnn::new(&config, checked.var_builder(DType::F32, &device))?;
            (model, None)
        }
        BenchTask::Train => {
            let sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
            (train_model, Some(sgd))
        }
    };
    model.set_autocast(args.precision.autocast());
    let mut seconds = Vec::with_capacity(args.iters);
    for i in 0..args.warmup + args.iters {
        let t0 = Instant::now();
        iteration(&model, sgd.as_mut(), i as u64, &mut StageClock::off())?;
        if i >= args.warmup {
            seconds.push(t0.elapsed().as_secs_f64());
        }
    }
    let profile = match args.profile {
        true => {
            let mut clock = StageClock::start(true, &device);
            let i = (args.warmup + args.iters) as u64;
            iteration(&model, sgd.as_mut(), i, &mut clock)?;
            clock.finish()
        }
        false => None,
    };
    let median = median(&seconds);
    let task = match args.task {
        BenchTask::Predict => "predict",
        BenchTask::Train => "train",
    };
    println!(
        "{}",
        serde_json::json!({
            "side": "detect",
            "task": task,
            "backbone": args.backbone,
            "batch": args.batch,
            "height": h,
            "width": w,
            "precision": args.precision.name(),
            "device": args.device,
            "seconds": seconds,
            "median_s": median,
            "images_per_s": args.batch as f64 / median,
            "profile": profile.map(|p| p.to_string()),
        })
    );
    Ok(())
}

/// The benchmark's ground truth for `batch` images of `h x w` (the 800x1333 boxes scaled).
fn targets(h: usize, w: usize, batch: usize, device: &Device) -> anyhow::Result<Vec<Target>> {
    let (sy, sx) = (h as f32 / 800.0, w as f32 / 1333.0);
    let boxes: Vec<f32> = BOXES
        .iter()
        .flat_map(|b| [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy])
        .collect();
    (0..batch)
        .map(|_| {
            Ok(Target {
                boxes: Tensor::from_vec(boxes.clone(), (BOXES.len(), 4), device)?,
                labels: Tensor::new(&LABELS, device)?,
            })
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
