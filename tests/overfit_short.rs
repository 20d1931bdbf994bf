//! The model learns on real photographs: 40 iterations (batch 2, lr 0.02 after a 10-iteration
//! warm-up) over 2 coco128 images with a small random-init ResNeXt-FPN must bring the total
//! loss (mean of the last 4 steps) below half of its first value. Random init predicts ~ln(C)
//! for the classifier and ~ln 2 for objectness; fitting two images' background vs. objects
//! roughly halves that within a few dozen steps, a broken backward or optimizer does not.
//! The long run with COCO AP is `cargo run --release --example overfit_coco128`.

mod overfit_support;

use overfit_support::{coco128, write_subset, Overfit};

const ITERATIONS: u64 = 40;
const WARMUP: u64 = 10;
const LR: f64 = 0.02;

#[test]
fn loss_halves_on_two_coco128_images() {
    let Some(coco128) = coco128() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = write_subset(&coco128, 2, dir.path()).unwrap();
    let mut run = Overfit::new(&spec, 2, (128, 192), 0).unwrap();
    let lr = |it: u64| LR * (0.001 + 0.999 * (it.min(WARMUP) as f64 / WARMUP as f64));
    let mut totals = Vec::new();
    let mut epoch = 0;
    while (totals.len() as u64) < ITERATIONS {
        totals.extend(run.epoch(epoch, totals.len() as u64, lr).unwrap());
        epoch += 1;
    }
    let first = totals[0];
    let last = totals[totals.len() - 4..].iter().sum::<f64>() / 4.0;
    println!(
        "total loss: first {first:.4}, mean of the last 4 {last:.4} ({:.0}%)",
        100.0 * last / first
    );
    println!("{totals:.3?}");
    assert!(last < 0.5 * first, "loss did not halve: {first} -> {last}");
}
