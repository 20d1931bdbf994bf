//! Shared by the benchmark examples: run a reference timing script (torch/torchvision) and
//! summarise timings. Each script prints one JSON object with a `seconds` list.
//! Each example uses a part of it, so unused items are expected here.
#![allow(dead_code)]
use std::process::Command;

/// The middle value of `xs` (the upper middle for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The interpreter with torch and torchvision: `$DETECT_PYTHON`, else `/work/venv/bin/python`.
pub fn python() -> String {
    std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "/work/venv/bin/python".into())
}

/// Runs `scripts/<script>` with `args` and returns its JSON output.
pub fn run_script(script: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let python = python();
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {python} (set DETECT_PYTHON): {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{python} {path} failed (set DETECT_PYTHON to a python with torchvision): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The median of a script output's `seconds` list.
pub fn median_seconds(json: &serde_json::Value) -> anyhow::Result<f64> {
    let times = json["seconds"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no `seconds` in {json}"))?;
    Ok(median(times.iter().filter_map(|t| t.as_f64()).collect()))
}

/// The usual arguments of the timing scripts.
pub fn script_args(name: &str, h: usize, w: usize, iters: usize, threads: usize) -> Vec<String> {
    [
        "--backbone",
        name,
        "--height",
        &h.to_string(),
        "--width",
        &w.to_string(),
        "--iters",
        &iters.to_string(),
        "--threads",
        &threads.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// The reference's median seconds: `scripts/<script>` run with [`script_args`].
pub fn reference_seconds(
    script: &str,
    name: &str,
    h: usize,
    w: usize,
    iters: usize,
    threads: usize,
) -> anyhow::Result<f64> {
    median_seconds(&run_script(
        script,
        &script_args(name, h, w, iters, threads),
    )?)
}
