//! `detect doctor`: what this machine offers for CUDA (GPU, driver, CUDA, cuDNN, NVRTC and
//! NCCL versions), then a few-second self-check, CUDA against CPU in full f32 (convolution
//! forward and both gradients, NMS, RoIAlign forward and gradient), with PASS or FAIL and the
//! worst error. Without a GPU, or in a CPU-only build, it says so and fails.
use std::time::Instant;

use anyhow::{bail, Result};

use crate::gpu_checks::{self, versions};

pub fn run() -> Result<()> {
    let build = match cfg!(feature = "cuda") {
        true => "built with CUDA",
        false => "CPU-only build",
    };
    println!("detect {} ({build})", env!("CARGO_PKG_VERSION"));
    for (label, value) in versions::report() {
        println!("{label:<16} {value}");
    }
    let device = match gpu_checks::cuda_device() {
        Ok(d) => d,
        Err(why) => bail!("{why}"),
    };
    println!("{:<16} {}", "GPU 0", versions::gpu(&device));
    println!("self-check (CUDA against CPU, full f32):");
    let start = Instant::now();
    let checks = gpu_checks::quick(&device);
    for c in &checks {
        let result = if c.passed { "PASS" } else { "FAIL" };
        println!("  {result} {:<40} {} ({})", c.name, c.measured, c.limit);
    }
    let worst = checks.iter().map(|c| c.error).fold(0.0, f64::max);
    let passed = checks.iter().all(|c| c.passed);
    println!(
        "self-check: {} ({} checks in {:.1} s, worst error {worst:.2e})",
        if passed { "PASS" } else { "FAIL" },
        checks.len(),
        start.elapsed().as_secs_f64()
    );
    if !passed {
        bail!("the CUDA self-check failed (the FAIL lines above say where)");
    }
    Ok(())
}
