//! Issue 12: the step path makes no per-anchor host copy. One training step and one inference
//! forward of a small `shapes` model on the CPU, recorded by `heads::ops::transfer` (the
//! counter every host read of the step path goes through, the same on CUDA). On the CPU a
//! "host read" is only a copy, but it is the read a GPU run would make, so the record says
//! where the step would synchronise and how much it would copy.
//!
//! The reads that remain are listed exactly (a new read site fails the test):
//! - `nonzero: count`: the size of each data-dependent index set (the RPN's and the box head's
//!   sampled positives and negatives, the proposals and detections that pass their filters,
//!   the box-loss positives): one scalar each;
//! - `fastrcnn_loss: label range`: one scalar, the check that every label is a class;
//! - `losses: total (non-finite check)`: one scalar per iteration;
//! - `losses: components`: four scalars, on logged iterations only;
//! - `nms: boxes`, `nms: scores`, `nms: classes`: NMS on the CPU reads its candidates, those
//!   that survive the per-level top-n (at most `levels x pre_nms_top_n` boxes); on CUDA it
//!   stays on the device and reads only its kept count (a `nonzero: count`).
mod step_support;

use std::collections::BTreeMap;

use candle_core::Device;
use clap::Parser;
use detect::cli::{Cli, Command};
use detect::model::config::DetectorConfig;
use detect::profile::StageClock;
use detect::train::dist::SingleProcess;
use detect::train::options::TrainOptions;
use detect::train::solver::Sgd;
use detect::train::step::{build_model, step};
use heads::ops::transfer::{Recorder, SiteReads, TransferRecord};
use step_support::batch;

/// Proposals kept per level before NMS: small, so that NMS's reads are far below the anchors.
const PRE_NMS_TOP_N: usize = 100;
/// Images per batch.
const IMAGES: usize = 2;

fn options() -> TrainOptions {
    let args = [
        "detect",
        "train",
        "--dataset",
        "shapes",
        "--batch-size",
        "2",
    ];
    let Command::Train(train) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!("parsed a train command")
    };
    TrainOptions::from_args(&train).unwrap()
}

fn config() -> DetectorConfig {
    let mut config = DetectorConfig::shapes(4);
    config.rpn.pre_nms_top_n_train = PRE_NMS_TOP_N;
    config.rpn.pre_nms_top_n_test = PRE_NMS_TOP_N;
    // At most 100 proposals x 3 classes reach the box head's NMS.
    config.rpn.post_nms_top_n_test = PRE_NMS_TOP_N;
    config
}

/// Anchors of one 160x160 image: P2..P6 at 40, 20, 10, 5, 3 cells a side, 3 anchors a cell.
const ANCHORS: usize = (1600 + 400 + 100 + 25 + 9) * 3;

fn sites(r: &TransferRecord) -> BTreeMap<&'static str, SiteReads> {
    r.read_sites.clone()
}

/// The NMS reads: boxes of at most `levels x PRE_NMS_TOP_N` candidates per image (RPN), or
/// `proposals x classes` (box head).
fn assert_nms_reads_are_small(r: &TransferRecord) {
    let boxes = r.read_sites["nms: boxes"].largest / 4;
    assert!(boxes <= 5 * PRE_NMS_TOP_N, "NMS read {boxes} boxes");
    assert!(
        boxes * 10 <= ANCHORS,
        "NMS read {boxes} boxes, not far below the {ANCHORS} anchors"
    );
}

#[test]
fn a_training_step_reads_only_scalars_besides_nms() {
    let options = options();
    let (model, params) = build_model(&config(), Default::default(), 0, &Device::Cpu).unwrap();
    let mut sgd = Sgd::new(params.trainable(), 0.9, 1e-4).unwrap();
    let batch = batch(IMAGES);
    let mut clock = StageClock::off();

    let scope = Recorder::start();
    let quiet = step(
        &model,
        &mut sgd,
        &batch,
        &options,
        0,
        &mut SingleProcess,
        false,
        false,
        &mut clock,
    )
    .unwrap();
    let r = scope.finish();
    assert!(quiet.total.is_finite() && quiet.components.is_none());
    assert_eq!(
        (r.transfers, r.transfer_bytes),
        (0, 0),
        "no transfer on the CPU"
    );
    let got = sites(&r);
    let names: Vec<&str> = got.keys().copied().collect();
    assert_eq!(
        names,
        vec![
            "fastrcnn_loss: label range",
            "losses: total (non-finite check)",
            "nms: boxes",
            "nms: classes",
            "nms: scores",
            "nonzero: count",
        ],
        "the read sites of a training step: {got:?}"
    );
    let scalar = |count| SiteReads { count, largest: 1 };
    assert_eq!(got["losses: total (non-finite check)"], scalar(1));
    assert_eq!(got["fastrcnn_loss: label range"], scalar(1));
    // Per image: RPN sampler 2, proposal filter 1, box-head sampler 2; then the box loss 1.
    assert_eq!(got["nonzero: count"], scalar(5 * IMAGES + 1));
    for nms in ["nms: boxes", "nms: classes", "nms: scores"] {
        assert_eq!(
            got[nms].count, IMAGES,
            "{nms}: one per image (per-level NMS)"
        );
    }
    assert_nms_reads_are_small(&r);

    // A logged iteration adds the four components, nothing else.
    let scope = Recorder::start();
    let logged = step(
        &model,
        &mut sgd,
        &batch,
        &options,
        1,
        &mut SingleProcess,
        false,
        true,
        &mut clock,
    )
    .unwrap();
    let r = scope.finish();
    assert_eq!(logged.components.as_ref().map(Vec::len), Some(4));
    let mut extra = sites(&r);
    assert_eq!(extra.remove("losses: components"), Some(scalar(4)));
    assert_eq!(
        extra.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
}

#[test]
fn an_inference_forward_reads_only_counts_besides_nms() {
    let (model, _) = build_model(&config(), Default::default(), 0, &Device::Cpu).unwrap();
    let batch = batch(IMAGES);
    let scope = Recorder::start();
    let detections = model
        .detect(&batch.images, &batch.image_sizes, &batch.original_sizes)
        .unwrap();
    let r = scope.finish();
    assert_eq!(detections.len(), IMAGES);
    assert_eq!(r.transfers, 0);
    let got = sites(&r);
    let names: Vec<&str> = got.keys().copied().collect();
    assert_eq!(
        names,
        vec![
            "nms: boxes",
            "nms: classes",
            "nms: scores",
            "nonzero: count"
        ],
        "the read sites of a forward: {got:?}"
    );
    // Per image: the proposal filter and the detection filter.
    assert_eq!(
        got["nonzero: count"],
        SiteReads {
            count: 2 * IMAGES,
            largest: 1
        }
    );
    // Per image: the RPN's NMS, and the box head's when any detection passes its filter.
    assert!(
        (IMAGES..=2 * IMAGES).contains(&got["nms: boxes"].count),
        "{got:?}"
    );
    assert_nms_reads_are_small(&r);
}

/// The record above only sees reads that go through the counter, so the step path's sources
/// must not read any other way: no direct `to_vec*` / `to_scalar` / device copy outside
/// `heads::ops::transfer` (tests excepted), except the listed raw copies of CUDA kernels,
/// which record themselves with `transfer::note_read`.
#[test]
fn the_step_path_reads_only_through_the_counter() {
    const FORBIDDEN: [&str; 9] = [
        ".to_vec0",
        ".to_vec1",
        ".to_vec2",
        ".to_vec3",
        ".to_scalar",
        "clone_dtoh",
        "memcpy_dtoh",
        "Tensor::from_vec",
        ".to_device(",
    ];
    // (file, pattern): raw copies that are counted by hand, or CPU-kernel internals.
    const ALLOWED: [(&str, &str); 4] = [
        ("heads/src/ops/nms/cuda.rs", "clone_dtoh"), // noted as "nms: mask"
        ("heads/src/ops/nms/cuda.rs", "Tensor::from_vec"), // an empty result, no data
        ("heads/src/ops/nonzero/cuda.rs", "clone_dtoh"), // noted as "nonzero: count"
        ("heads/src/ops/transfer.rs", ""),           // the counter itself
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("heads/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    for f in [
        "src/model/faster_rcnn.rs",
        "src/model/evaluate.rs",
        "src/train/step.rs",
        "src/train/trainer.rs",
        "src/predict/pipeline.rs",
        "src/output/detection.rs",
    ] {
        files.push(root.join(f));
    }
    let mut found = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests at the end of a file (`#[cfg(test)] mod tests { .. }` inline) are not
        // the step path.
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for pattern in FORBIDDEN {
                let allowed = ALLOWED
                    .iter()
                    .any(|&(f, p)| f == rel && (p.is_empty() || p == pattern));
                if line.contains(pattern) && !allowed {
                    found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "host reads or uploads outside heads::ops::transfer:\n{}",
        found.join("\n")
    );
}
