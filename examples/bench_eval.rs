//! COCO box evaluation on a COCO-val-sized generated set: ours vs pycocotools vs
//! faster-coco-eval, timed in the same run, each in its own process so peak memory is its own.
//!
//!     $DETECT_PYTHON scripts/gen_eval_bench.py --out target/eval_bench
//!     cargo run --release --example bench_eval -- [target/eval_bench] [THREADS]
//!
//! The Python tools run `scripts/bench_eval_py.py` with `$DETECT_PYTHON`, else
//! `python3`. Times include reading both JSON files.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use datasets::coco::CocoDataset;
use datasets::eval::CocoEvaluator;
use serde_json::{json, Value};

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The child mode: evaluate once and print a JSON line like the Python script's.
fn run_ours(dir: &Path, threads: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    let gt = CocoDataset::load(dir.join("gt.json"))?;
    let mut evaluator = CocoEvaluator::new(&gt);
    evaluator.add_results_file(dir.join("results.json"))?;
    let loaded = Instant::now();
    let metrics = evaluator.evaluate_with_threads(threads);
    let _ = metrics.summary();
    let end = Instant::now();
    let tool = format!(
        "ours ({threads} thread{})",
        if threads == 1 { "" } else { "s" }
    );
    println!(
        "{}",
        json!({"tool": tool, "load_s": (loaded - start).as_secs_f64(),
               "eval_s": (end - loaded).as_secs_f64(), "total_s": (end - start).as_secs_f64(),
               "peak_rss_mb": peak_rss_mb(), "stats": metrics.stats.to_vec()})
    );
    Ok(())
}

fn child(program: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(program).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(text.lines().last().unwrap_or(""))?)
}

fn python() -> PathBuf {
    std::env::var_os("DETECT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--ours") {
        return run_ours(Path::new(&args[1]), args[2].parse()?);
    }
    let dir = PathBuf::from(args.first().map_or("target/eval_bench", String::as_str));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = args.get(1).map_or(Ok(cores), |t| t.parse())?;
    anyhow::ensure!(
        dir.join("gt.json").exists(),
        "no benchmark set in {}; hint: run scripts/gen_eval_bench.py",
        dir.display()
    );
    let (gt, dt) = (dir.join("gt.json"), dir.join("results.json"));
    let (gt, dt) = (
        gt.to_str().unwrap_or_default(),
        dt.to_str().unwrap_or_default(),
    );
    let me = std::env::current_exe()?;
    let dir_s = dir.to_str().unwrap_or_default();
    let script = "scripts/bench_eval_py.py";
    let rows = vec![
        child(&me, &["--ours", dir_s, "1"])?,
        child(&me, &["--ours", dir_s, &threads.to_string()])?,
        child(&python(), &[script, "pycocotools", gt, dt])?,
        child(&python(), &[script, "faster_coco_eval", gt, dt])?,
    ];
    let reference = rows[2]["stats"].as_array().cloned().unwrap_or_default();
    let fast = rows[3]["total_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{:<20} {:>8} {:>8} {:>8} {:>10} {:>11} {:>13}",
        "tool", "load s", "eval s", "total s", "peak MiB", "vs faster", "max |dAP| vs pycocotools"
    );
    for r in &rows {
        let max_diff = r["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&reference)
            .map(|(a, b)| (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(f64::NAN)).abs())
            .fold(0.0, f64::max);
        let total = r["total_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<20} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>10.1}x {:>13.1e}",
            r["tool"].as_str().unwrap_or("?"),
            r["load_s"].as_f64().unwrap_or(f64::NAN),
            r["eval_s"].as_f64().unwrap_or(f64::NAN),
            total,
            r["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
            fast / total,
            max_diff
        );
    }
    Ok(())
}
