//! SGD step time: ours (`detect::train::solver::Sgd`, fused in-place CPU update) against
//! torch.optim.SGD (momentum 0.9, weight decay 1e-4, single-tensor and foreach) on the same
//! parameter sizes, measured in the same run. The reference needs a Python with torch: set
//! `DETECT_BENCH_PYTHON` (e.g. `/work/venv/bin/python`); without it only ours is printed.
//!
//! `cargo run --release --example bench_sgd [MILLIONS_OF_PARAMS]`
use candle_core::{DType, Device, Tensor, Var};
use detect::train::solver::Sgd;

fn main() -> anyhow::Result<()> {
    let millions: usize = std::env::args().nth(1).map_or(Ok(20), |s| s.parse())?;
    let (tensors, per) = (40usize, millions * 1_000_000 / 40);
    let dev = Device::Cpu;
    let vars: Vec<(String, Var)> = (0..tensors)
        .map(|i| {
            Ok((
                format!("p{i:02}"),
                Var::from_tensor(&Tensor::randn(0f32, 1.0, per, &dev)?)?,
            ))
        })
        .collect::<candle_core::Result<_>>()?;
    let mut loss = Tensor::zeros((), DType::F32, &dev)?;
    for (_, v) in &vars {
        loss = (loss + v.as_tensor().sum_all()?)?;
    }
    let grads = loss.backward()?;
    let mut sgd = Sgd::new(vars, 0.9, 1e-4)?;
    sgd.step(&grads, 0.01)?; // allocates the momentum buffers
    let reps = 5;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        sgd.step(&grads, 0.01)?;
    }
    let ours = t.elapsed().as_secs_f64() / reps as f64;
    println!("ours:  {ours:.4} s/step ({millions}M params in {tensors} tensors)");

    let Ok(python) = std::env::var("DETECT_BENCH_PYTHON") else {
        println!("torch: skipped (set DETECT_BENCH_PYTHON to a Python with torch)");
        return Ok(());
    };
    let script = format!(
        "import torch, time\n\
         torch.set_num_threads({threads})\n\
         ps = [torch.randn({per}, requires_grad=True) for _ in range({tensors})]\n\
         for p in ps: p.grad = torch.randn({per})\n\
         for foreach in (False, True):\n\
         \x20   opt = torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=foreach)\n\
         \x20   opt.step()\n\
         \x20   t = time.perf_counter()\n\
         \x20   for _ in range({reps}): opt.step()\n\
         \x20   print((time.perf_counter() - t) / {reps})\n",
        threads = std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "torch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let times: Vec<f64> = text.lines().map(str::parse).collect::<Result<_, _>>()?;
    for (label, t) in ["single-tensor", "foreach"].iter().zip(&times) {
        println!(
            "torch ({label}): {t:.4} s/step, ours/torch = {:.2}",
            ours / t
        );
    }
    Ok(())
}
