use std::collections::BTreeMap;

use super::*;
use crate::train::metrics::{EvalRecord, TrainRecord};

/// A plausible run: four decaying noisy losses every 20 iterations, AP every 500.
fn run(iterations: u64) -> Vec<Record> {
    let mut records = Vec::new();
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    for it in (20..=iterations).step_by(20) {
        let mut losses = BTreeMap::new();
        for (k, (name, start)) in [
            ("loss_box_reg", 0.3),
            ("loss_classifier", 0.9),
            ("loss_objectness", 0.7),
            ("loss_rpn_box_reg", 0.2),
        ]
        .into_iter()
        .enumerate()
        {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let jitter = 1.0 + 0.2 * ((noise % 1000) as f64 / 1000.0 - 0.5);
            let decay = (-(it as f64) / (800.0 + 300.0 * k as f64)).exp();
            losses.insert(name.to_string(), start * (0.1 + decay) * jitter);
        }
        let total = losses.values().sum();
        records.push(Record::Train(TrainRecord {
            iteration: it,
            losses,
            total_loss: total,
            lr: 0.02,
            seconds_per_iteration: 1.0,
            data_seconds: 0.1,
            all_reduce_seconds: None,
        }));
        if it % 500 == 0 {
            let ap = 0.6 * (1.0 - (-(it as f64) / 1000.0).exp());
            records.push(Record::Eval(EvalRecord {
                iteration: it,
                metrics: BTreeMap::from([("AP".into(), ap), ("AP50".into(), (ap * 1.5).min(0.95))]),
            }));
        }
    }
    records
}

/// The fraction of pixels in `rows` for which `keep` holds.
fn fraction(img: &image::RgbImage, rows: std::ops::Range<u32>, keep: fn([u8; 3]) -> bool) -> f64 {
    let mut n = 0usize;
    for y in rows.clone() {
        for x in 0..img.width() {
            if keep(img.get_pixel(x, y).0) {
                n += 1;
            }
        }
    }
    n as f64 / (rows.len() as f64 * img.width() as f64)
}

fn non_white(p: [u8; 3]) -> bool {
    p != [255, 255, 255]
}

/// Curves are coloured; text, axes and grid are grey levels.
fn coloured(p: [u8; 3]) -> bool {
    p.iter().max().unwrap() - p.iter().min().unwrap() > 60
}

#[test]
fn draws_losses_and_ap_panels_with_text() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("loss.png");
    plot_losses(&run(3000), &path, "metrics.jsonl")?;
    if let Ok(keep) = std::env::var("DETECT_KEEP_PLOT") {
        std::fs::copy(&path, keep)?;
    }
    let img = image::open(&path)?.to_rgb8();
    assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
    // The caption band (text only) must hold glyph pixels: the font was found and used.
    let caption = fraction(&img, 15..40, non_white);
    assert!(caption > 0.005, "caption band is blank ({caption})");
    // Both panels hold coloured curves, and neither is a solid fill.
    let top = fraction(&img, 60..HEIGHT * 2 / 3 - 50, coloured);
    let bottom = fraction(&img, HEIGHT * 2 / 3 + 50..HEIGHT - 50, coloured);
    assert!(top > 0.01 && top < 0.3, "loss panel: {top}");
    assert!(bottom > 0.002 && bottom < 0.3, "AP panel: {bottom}");
    Ok(())
}

#[test]
fn without_train_records_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = plot_losses(&[], &dir.path().join("loss.png"), "runs/x/metrics.jsonl").unwrap_err();
    assert!(err.to_string().contains("runs/x/metrics.jsonl"), "{err}");
}

#[test]
fn smoothing_is_a_centred_mean() {
    let v = [(1, 1.0), (2, 2.0), (3, 6.0), (4, 3.0)];
    assert_eq!(smooth(&v, 1), v);
    assert_eq!(
        smooth(&v, 3),
        [(1, 1.5), (2, 3.0), (3, 11.0 / 3.0), (4, 4.5)]
    );
}
