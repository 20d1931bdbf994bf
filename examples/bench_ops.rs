//! Times `heads::ops` against torchvision.ops on the same inputs, interleaved in one run.
//!
//!     cargo run --release --example bench_ops -- [PAIRS]
//!
//! The torchvision side is `scripts/bench_ops_torch.py`, run once as a child process with
//! `$DETECT_PYTHON` (else `python3`): it answers each request with the seconds one repetition
//! took (examples/common/reference.rs). For every op, after one warm-up on each side, ours and
//! torchvision run alternately for PAIRS pairs (default 7, at least 5; the first side swapped
//! each pair), so both see the same load. Printed per op: the median time of each side, the median of the per-pair ratios
//! (ours / torchvision, lower is better) and their min-max, with the load average before and
//! after. Both sides use RAYON_NUM_THREADS threads (default 2 here); CANDLE_NUM_THREADS defaults
//! to 1 as the `detect` binary sets it. `DETECT_BENCH_DEVICE=cuda` (a `--features cuda` build)
//! times both sides on the GPU instead.

#[path = "common/reference.rs"]
mod reference;

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

fn seconds(dev: &Device, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    dev.synchronize()?;
    let start = Instant::now();
    f()?;
    dev.synchronize()?;
    Ok(start.elapsed().as_secs_f64())
}

type Op<'a> = (&'static str, Box<dyn FnMut() -> Result<()> + 'a>);

fn main() -> anyhow::Result<()> {
    // Set before rayon's pool starts: 2 threads unless told otherwise, candle's element-wise
    // pool at 1 as the `detect` binary sets it.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    reference::detect_env();
    let pairs: usize = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("PAIRS must be a number, got {s:?}"))?,
        None => 7,
    };
    anyhow::ensure!(pairs >= 5, "PAIRS must be at least 5, got {pairs}");
    let cuda = std::env::var("DETECT_BENCH_DEVICE").is_ok_and(|d| d == "cuda");
    let dev = if cuda {
        Device::new_cuda(0)?
    } else {
        Device::Cpu
    };
    let device_name = if cuda { "cuda" } else { "cpu" };
    let inputs = make_inputs()?;
    let path = std::env::temp_dir().join(format!(
        "detect_bench_ops_{}.safetensors",
        std::process::id()
    ));
    candle_core::safetensors::save(&inputs, &path)?;
    let threads = reference::threads(); // RAYON_NUM_THREADS
    let args = [
        path.to_string_lossy().into_owned(),
        threads.to_string(),
        device_name.to_string(),
    ];
    let torch = reference::Reference::start("bench_ops_torch.py", &args);
    let _ = std::fs::remove_file(&path);
    let mut torch = torch?;

    let t = |name: &str| inputs[name].to_device(&dev);
    let nms_inputs: Vec<(Tensor, Tensor)> = [1000, 5000, 20000]
        .iter()
        .map(|n| Ok((t(&format!("nms{n}_boxes"))?, t(&format!("nms{n}_scores"))?)))
        .collect::<Result<_>>()?;
    let (b, s, c) = (
        t("batched_boxes")?,
        t("batched_scores")?,
        t("batched_idxs")?,
    );
    let levels: Vec<Tensor> = (2..6).map(|l| t(&format!("p{l}"))).collect::<Result<_>>()?;
    let (rois, grad, boxes) = (t("rois")?, t("grad")?, t("boxes")?);
    let x = Var::from_tensor(&levels[0])?;
    let vars: Vec<Var> = levels.iter().map(Var::from_tensor).collect::<Result<_>>()?;
    let leaves: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let pooler = MultiScaleRoiAlign::new((7, 7), 2);
    let image = std::slice::from_ref(&boxes);
    let size = [(800, 1344)];

    let [n1, n5, n20] = [0, 1, 2].map(|i| &nms_inputs[i]);
    let ops: Vec<Op> = vec![
        ("nms 1000", Box::new(|| nms(&n1.0, &n1.1, 0.7).map(|_| ()))),
        ("nms 5000", Box::new(|| nms(&n5.0, &n5.1, 0.7).map(|_| ()))),
        (
            "nms 20000",
            Box::new(|| nms(&n20.0, &n20.1, 0.7).map(|_| ())),
        ),
        (
            "batched_nms 20000/80",
            Box::new(|| batched_nms(&b, &s, &c, 0.5).map(|_| ())),
        ),
        (
            "roi_align fwd",
            Box::new(|| roi_align(&levels[0], &rois, (7, 7), 0.25, 2, false).map(|_| ())),
        ),
        (
            "roi_align fwd+bwd",
            Box::new(|| {
                let y = roi_align(&x, &rois, (7, 7), 0.25, 2, false)?;
                (y * &grad)?.sum_all()?.backward().map(|_| ())
            }),
        ),
        (
            "MultiScaleRoiAlign fwd",
            Box::new(|| pooler.forward(&levels, image, &size).map(|_| ())),
        ),
        (
            "MultiScaleRoiAlign fwd+bwd",
            Box::new(|| {
                let y = pooler.forward(&leaves, image, &size)?;
                (y * &grad)?.sum_all()?.backward().map(|_| ())
            }),
        ),
    ];

    println!("{device_name}, {threads} threads, {pairs} interleaved pairs per op; load average before: {}", reference::load_average());
    println!("| op | ours ms | torchvision ms | ratio (median) | ratio min-max |\n|---|---:|---:|---:|---:|");
    for (name, mut f) in ops {
        seconds(&dev, f.as_mut())?; // warm-up, both sides
        torch.time(name)?;
        let timed =
            reference::interleave_step(pairs, name, || Ok(seconds(&dev, f.as_mut())?), &mut torch)?;
        let ratios = timed.ratios();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::INFINITY, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {lo:.2}-{hi:.2} |",
            reference::median(timed.ours) * 1e3,
            reference::median(timed.reference) * 1e3,
            reference::median(ratios)
        );
    }
    println!("load average after: {}", reference::load_average());
    Ok(())
}
