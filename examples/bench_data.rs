//! Images/second through decode + resize + normalize (+ pad to /32) on the real COCO JPEGs of
//! `../shared/data`, ours vs PIL + torchvision's GeneralizedRCNNTransform, in the same run.
//!
//!     DETECT_PYTHON=/path/to/venv/bin/python \
//!         cargo run --release --example bench_data -- [MIN_SIZE] [MAX_SIZE] [ROUNDS]
//!
//! Rows: one core (a plain loop on both sides); all cores (ours: one thread per core over the
//! file list, and our `DataLoader` in eval mode with one worker per core; torchvision: a torch
//! `DataLoader` with one worker process per core, how its detection reference is fed).
//! torchvision runs `scripts/bench_data_torch.py` with `$DETECT_PYTHON`, else `python3`.
//! ROUNDS (default 3) rounds of both sides, alternating which goes first; medians and the
//! min-max of the per-round ratios are printed.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use datasets::dataset::Dataset;
use datasets::image::load_rgb;
use datasets::loader::{DataLoader, LoaderConfig, Mode};
use datasets::transforms::{padded_size, resize_normalize_into, resized_size, TransformConfig};

fn process(path: &Path, tf: &TransformConfig) -> usize {
    let image = load_rgb(path).expect("benchmark images decode");
    let size = resized_size(image.height, image.width, tf.min_size[0], tf.max_size);
    let (ph, pw) = padded_size(&[size], tf.size_divisible);
    let mut buf = vec![0f32; 3 * ph * pw];
    let (mean, std) = (tf.image_mean, tf.image_std);
    resize_normalize_into(&image, size, false, mean, std, &mut buf, (ph, pw));
    let t = Tensor::from_vec(buf, (1, 3, ph, pw), &Device::Cpu).expect("tensor");
    t.dims()[3]
}

fn ours_threads(files: &[PathBuf], tf: &TransformConfig, threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                process(f, tf);
            });
        }
    });
    files.len() as f64 / start.elapsed().as_secs_f64()
}

fn ours_loader(data: &Path, tf: &TransformConfig, workers: usize) -> f64 {
    let mut n = 0;
    let start = Instant::now();
    for set in ["coco128", "coco_val80"] {
        let d = Dataset::from_files(
            &data.join(set).join("annotations.json"),
            &data.join(set).join("images"),
        );
        let d = Arc::new(d.expect("dataset"));
        let map = d.coco.category_map();
        let config = LoaderConfig {
            batch_size: 1,
            num_workers: workers,
            ..LoaderConfig::default()
        };
        let loader = DataLoader::new(d, &map, tf.clone(), config, Mode::Eval);
        n += loader
            .epoch(0)
            .map(|b| b.expect("batch").image_ids.len())
            .sum::<usize>();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn python() -> String {
    std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// One run of the torchvision side: its JSON (`single`, `multi`, `multi_threads` images/s).
fn torch_side(cores: usize, tf: &TransformConfig, files: &[PathBuf]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_data_torch.py"))
        .args([cores, tf.min_size[0], tf.max_size].map(|v| v.to_string()))
        .args(files)
        .output()
        .expect("run python (set DETECT_PYTHON)");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "torch side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = *args.get(2).unwrap_or(&3);
    let tf = TransformConfig {
        min_size: vec![*args.first().unwrap_or(&800)],
        max_size: *args.get(1).unwrap_or(&1333),
        ..TransformConfig::default()
    };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut files: Vec<PathBuf> = ["coco128/images", "coco_val80/images"]
        .iter()
        .flat_map(|d| std::fs::read_dir(data.join(d)).expect("../shared/data is missing"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} JPEGs, min_size {}, max_size {}, {cores} cores",
        files.len(),
        tf.min_size[0],
        tf.max_size
    );
    for f in files.iter().take(8) {
        process(f, &tf); // warm-up
    }
    // Rounds of (ours, torchvision), alternating which goes first, so that a change in machine
    // load biases neither side; each row reports medians and the min-max per-round ratio.
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = vec![
        ("1 core".into(), vec![], vec![]),
        (
            format!("{cores} cores (threads / worker processes)"),
            vec![],
            vec![],
        ),
        (
            format!("{cores} cores (our DataLoader / torch DataLoader)"),
            vec![],
            vec![],
        ),
        (
            format!("{cores} cores (torch intra-op threads)"),
            vec![],
            vec![],
        ),
    ];
    for round in 0..rounds {
        let mut torch = serde_json::Value::Null;
        if round % 2 == 1 {
            torch = torch_side(cores, &tf, &files);
        }
        let one = ours_threads(&files, &tf, 1);
        let all = ours_threads(&files, &tf, cores);
        let loader = ours_loader(&data, &tf, cores);
        if round % 2 == 0 {
            torch = torch_side(cores, &tf, &files);
        }
        let t = |k: &str| torch[k].as_f64().unwrap_or(f64::NAN);
        for (row, (ours, theirs)) in rows.iter_mut().zip([
            (one, t("single")),
            (all, t("multi")),
            (loader, t("multi")),
            (all, t("multi_threads")),
        ]) {
            row.1.push(ours);
            row.2.push(theirs);
        }
    }
    println!(
        "{:<44} {:>10} {:>12} {:>7}  per-round ratio ({rounds} rounds, medians; higher is better for us)",
        "images/s (decode+resize+normalize)", "ours", "torchvision", "ratio"
    );
    for (name, ours, theirs) in rows {
        let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| o / t).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "{name:<44} {:>10.1} {:>12.1} {:>6.2}x  {lo:.2}-{hi:.2}",
            median(ours),
            median(theirs),
            median(ratios)
        );
    }
    println!(
        "load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
