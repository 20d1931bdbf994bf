//! JPEG decode speed: ours (libjpeg-turbo via mozjpeg-sys, `datasets::image::decode_rgb`) vs the
//! previous decoder (zune-jpeg through `image` 0.25, `.to_rgb8()`), on the real COCO JPEGs of
//! `../shared/data`, files already in memory, one thread.
//!
//!     cargo run --release -p datasets --example bench_decode -- [ROUNDS]
//!
//! The two decoders alternate round by round (ours first in even rounds) so that machine load
//! hits both alike; each prints the median of its per-round totals. Ours also walks the markers
//! for truncation, which the old path did too. Also prints how far zune's pixels are from ours.
use std::path::{Path, PathBuf};
use std::time::Instant;

use datasets::image::decode_rgb;

/// Each file's path and bytes.
type Files = [(PathBuf, Vec<u8>)];

fn ours(files: &Files) -> usize {
    let decode = |(path, bytes): &(PathBuf, Vec<u8>)| decode_rgb(bytes, path).unwrap().pixels.len();
    files.iter().map(decode).sum()
}

fn zune(files: &Files) -> usize {
    let decode = |(_, bytes): &(PathBuf, Vec<u8>)| {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap();
        image.to_rgb8().into_raw().len()
    };
    files.iter().map(decode).sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let mut files = Vec::new();
    for set in ["coco128", "coco_val80"] {
        let dir = data.join(set).join("images");
        for entry in std::fs::read_dir(&dir).expect("../shared/data is missing") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "jpg") {
                let bytes = std::fs::read(&path).expect("read");
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    let (mut t_ours, mut t_zune) = (Vec::new(), Vec::new());
    let time = |f: fn(&Files) -> usize| {
        let start = Instant::now();
        std::hint::black_box(f(&files));
        start.elapsed().as_secs_f64()
    };
    time(ours); // warm-up
    time(zune);
    for round in 0..rounds {
        if round % 2 == 0 {
            t_ours.push(time(ours));
            t_zune.push(time(zune));
        } else {
            t_zune.push(time(zune));
            t_ours.push(time(ours));
        }
    }
    let (a, b) = (median(t_ours), median(t_zune));
    let n = files.len() as f64;
    println!(
        "{} JPEGs, {rounds} rounds, one thread, median per round",
        files.len()
    );
    println!("libjpeg-turbo (ours): {a:.3} s = {:.1} images/s", n / a);
    println!("zune-jpeg (before):   {b:.3} s = {:.1} images/s", n / b);
    println!("time ratio ours/zune: {:.2}", a / b);

    let (mut max, mut sum, mut count) = (0u8, 0u64, 0u64);
    for (path, bytes) in &files {
        let new = decode_rgb(bytes, path).unwrap().pixels;
        let old = image::load_from_memory(bytes).unwrap().to_rgb8().into_raw();
        for (x, y) in new.iter().zip(&old) {
            let d = x.abs_diff(*y);
            max = max.max(d);
            sum += d as u64;
        }
        count += new.len() as u64;
    }
    println!(
        "zune vs libjpeg-turbo pixels: max abs diff {max}, mean abs diff {:.4} levels",
        sum as f64 / count as f64
    );
}
