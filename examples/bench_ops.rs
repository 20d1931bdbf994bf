//! Times `heads::ops` against torchvision.ops (CPU) on the same inputs, in one run.
//!
//! `cargo run --release --example bench_ops` — the torchvision side is
//! `scripts/bench_ops_torch.py`, run with `$DETECT_PYTHON` (default `/work/venv/bin/python`)
//! and the same thread count as ours (rayon's pool). Prints ours / torchvision / ratio (ms,
//! median of 10 runs for NMS and 5 for RoIAlign, after a warm-up). `DETECT_BENCH_DEVICE=cuda`
//! (a `--features cuda` build) times both sides on the GPU instead.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use heads::ops::{batched_nms, nms, roi_align, MultiScaleRoiAlign};

struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `n` boxes in an 800x1344 image, in clusters of ~20 jittered copies (like RPN proposals).
fn clustered(rng: &mut Rng, n: usize) -> Result<(Tensor, Tensor)> {
    let mut boxes = Vec::with_capacity(4 * n);
    let mut centre = [0f32; 4];
    for i in 0..n {
        if i % 20 == 0 {
            let (cx, cy) = (rng.uniform() * 1344.0, rng.uniform() * 800.0);
            let (w, h) = (16.0 + rng.uniform() * 300.0, 16.0 + rng.uniform() * 300.0);
            centre = [cx, cy, w, h];
        }
        let [cx, cy, w, h] = centre;
        let (jx, jy) = (
            (rng.uniform() - 0.5) * 0.2 * w,
            (rng.uniform() - 0.5) * 0.2 * h,
        );
        let (sw, sh) = (
            w * (0.9 + 0.2 * rng.uniform()),
            h * (0.9 + 0.2 * rng.uniform()),
        );
        boxes.extend([
            cx + jx - sw / 2.0,
            cy + jy - sh / 2.0,
            cx + jx + sw / 2.0,
            cy + jy + sh / 2.0,
        ]);
    }
    let scores: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
    Ok((
        Tensor::from_vec(boxes, (n, 4), &Device::Cpu)?,
        Tensor::from_vec(scores, n, &Device::Cpu)?,
    ))
}

fn median_ms(dev: &Device, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    dev.synchronize()?;
    let mut t: Vec<f64> = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        dev.synchronize()?;
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[reps / 2])
}

/// The inputs of every benchmark, made on the CPU (and saved for the torchvision side).
fn make_inputs() -> Result<HashMap<String, Tensor>> {
    let (mut rng, cpu) = (Rng(0x2545_F491_4F6C_DD1D), Device::Cpu);
    let mut inputs: HashMap<String, Tensor> = HashMap::new();
    for n in [1000, 5000, 20000] {
        let (b, s) = clustered(&mut rng, n)?;
        inputs.insert(format!("nms{n}_boxes"), b);
        inputs.insert(format!("nms{n}_scores"), s);
    }
    let (b, s) = clustered(&mut rng, 20000)?;
    let c: Vec<i64> = (0..20000).map(|_| (rng.uniform() * 80.0) as i64).collect();
    inputs.insert("batched_boxes".into(), b);
    inputs.insert("batched_scores".into(), s);
    inputs.insert("batched_idxs".into(), Tensor::from_vec(c, 20000, &cpu)?);
    // FPN levels P2..P5 of an 800x1344 input; RoIAlign alone pools from P2 (scale 1/4).
    for l in 0..4 {
        let p = Tensor::randn(0f32, 1.0, (1, 256, 200 >> l, 336 >> l), &cpu)?;
        inputs.insert(format!("p{}", l + 2), p);
    }
    let (boxes, _) = clustered(&mut rng, 1000)?;
    let zeros = Tensor::zeros((1000, 1), candle_core::DType::F32, &cpu)?;
    inputs.insert("rois".into(), Tensor::cat(&[&zeros, &boxes], 1)?);
    inputs.insert("boxes".into(), boxes);
    let grad = Tensor::randn(0f32, 1.0, (1000, 256, 7, 7), &cpu)?;
    inputs.insert("grad".into(), grad);
    Ok(inputs)
}

fn main() -> Result<()> {
    let cuda = std::env::var("DETECT_BENCH_DEVICE").is_ok_and(|d| d == "cuda");
    let dev = if cuda {
        Device::new_cuda(0)?
    } else {
        Device::Cpu
    };
    let inputs = make_inputs()?;
    let t = |name: &str| inputs[name].to_device(&dev);
    let mut ours: Vec<(String, f64)> = Vec::new();
    for n in [1000, 5000, 20000] {
        let (b, s) = (t(&format!("nms{n}_boxes"))?, t(&format!("nms{n}_scores"))?);
        let ms = median_ms(&dev, 10, || nms(&b, &s, 0.7).map(|_| ()))?;
        ours.push((format!("nms {n}"), ms));
    }
    let (b, s, c) = (
        t("batched_boxes")?,
        t("batched_scores")?,
        t("batched_idxs")?,
    );
    let ms = median_ms(&dev, 10, || batched_nms(&b, &s, &c, 0.5).map(|_| ()))?;
    ours.push(("batched_nms 20000/80".into(), ms));

    let levels: Vec<Tensor> = (2..6).map(|l| t(&format!("p{l}"))).collect::<Result<_>>()?;
    let (rois, grad, boxes) = (t("rois")?, t("grad")?, t("boxes")?);
    let ms = median_ms(&dev, 5, || {
        roi_align(&levels[0], &rois, (7, 7), 0.25, 2, false).map(|_| ())
    })?;
    ours.push(("roi_align fwd".into(), ms));
    let x = Var::from_tensor(&levels[0])?;
    let ms = median_ms(&dev, 5, || {
        let y = roi_align(&x, &rois, (7, 7), 0.25, 2, false)?;
        (y * &grad)?.sum_all()?.backward().map(|_| ())
    })?;
    ours.push(("roi_align fwd+bwd".into(), ms));
    let pooler = MultiScaleRoiAlign::new((7, 7), 2);
    let image = std::slice::from_ref(&boxes);
    let ms = median_ms(&dev, 5, || {
        pooler.forward(&levels, image, &[(800, 1344)]).map(|_| ())
    })?;
    ours.push(("MultiScaleRoiAlign".into(), ms));

    let path = std::env::temp_dir().join("detect_bench_ops.safetensors");
    candle_core::safetensors::save(&inputs, &path)?;
    let python = std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "/work/venv/bin/python".into());
    let threads = candle_core::utils::get_num_threads(); // rayon's pool size (same env var)
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = ["scripts", "../scripts"]
        .map(|d| root.join(d).join("bench_ops_torch.py"))
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_default();
    let device_name = if cuda { "cuda" } else { "cpu" };
    let run = std::process::Command::new(&python)
        .arg(&script)
        .args([
            path.to_str().unwrap_or_default(),
            &threads.to_string(),
            device_name,
        ])
        .output();
    let theirs: HashMap<String, f64> = match run {
        Ok(o) if o.status.success() => {
            serde_json::from_slice(&o.stdout).map_err(candle_core::Error::wrap)?
        }
        Ok(o) => {
            eprintln!(
                "torchvision side failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            HashMap::new()
        }
        Err(e) => {
            eprintln!("could not run {python}: {e}");
            HashMap::new()
        }
    };
    println!("{device_name}, {threads} CPU threads; ms, median");
    println!("| op | ours | torchvision | ratio |\n|---|---:|---:|---:|");
    for (name, ms) in ours {
        match theirs.get(&name) {
            Some(t) => println!("| {name} | {ms:.2} | {t:.2} | {:.2} |", ms / t),
            None => println!("| {name} | {ms:.2} | - | - |"),
        }
    }
    Ok(())
}
