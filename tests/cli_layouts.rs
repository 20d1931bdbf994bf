//! `detect train` and `detect eval --weights` from a Pascal VOC root and a YOLO data.yaml built
//! from real coco128 images (copied into a temporary folder at test time): training runs from
//! each layout with multi-scale sizes and evaluates the validation split; VOC evaluation also
//! prints VOC07 and VOC12 AP.
#[path = "../datasets/tests/common/layouts.rs"]
mod layouts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datasets::coco::CocoDataset;
use layouts::{subset, write_voc, write_yolo};

fn shared_data() -> Option<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"));
    if root.is_dir() {
        return Some(root);
    }
    eprintln!("shared data missing at {}", root.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "shared data is required in CI"
    );
    eprintln!("skipped");
    None
}

/// Six coco128 images (four to train on, two to evaluate) and where their files are.
fn coco128_six() -> Option<(CocoDataset, PathBuf, Vec<u64>)> {
    let root = shared_data()?.join("coco128");
    let coco = CocoDataset::load(root.join("annotations.json")).unwrap();
    let ids: Vec<u64> = coco
        .images
        .iter()
        .map(|i| i.id)
        .filter(|id| {
            coco.annotations
                .iter()
                .any(|a| a.image_id == *id && !a.iscrowd)
        })
        .take(6)
        .collect();
    Some((subset(&coco, &ids), root.join("images"), ids))
}

fn detect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the detect binary runs")
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "detect failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three iterations of the tiny model at 64/80 px (multi-scale), evaluating at iteration 3.
fn tiny_train(annotations: &Path, out: &Path) -> serde_json::Value {
    assert_ok(&detect(&[
        "train",
        "--annotations",
        annotations.to_str().unwrap(),
        "--backbone",
        "resnext_tiny_8x4d",
        "--backbone-weights",
        "none",
        "--iters",
        "3",
        "--batch-size",
        "2",
        "--min-size",
        "64,80",
        "--max-size",
        "112",
        "--eval-period",
        "3",
        "--output",
        out.to_str().unwrap(),
    ]));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"type\":\"eval\""),
        "the validation split was evaluated: {metrics}"
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap()
}

#[test]
fn trains_and_evaluates_from_a_voc_root() {
    let Some((coco, images, ids)) = coco128_six() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    write_voc(
        &root,
        &coco,
        &images,
        &[("train", &ids[..4]), ("val", &ids[4..])],
        &[],
    );
    let out = dir.path().join("run");
    let config = tiny_train(&root, &out);
    assert_eq!(
        config["detector"]["transform"]["min_size"],
        serde_json::json!([64, 80]),
        "config.json records the multi-scale list"
    );
    let stdout = assert_ok(&detect(&[
        "eval",
        "--weights",
        out.join("model_final.safetensors").to_str().unwrap(),
        "--annotations",
        root.to_str().unwrap(),
        "--output-json",
        dir.path().join("metrics.json").to_str().unwrap(),
    ]));
    assert!(
        stdout.contains("Average Precision  (AP) @[ IoU=0.50:0.95"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Pascal VOC AP@0.5")
            && stdout.contains("VOC07 AP")
            && stdout.contains("mAP"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    assert!(
        json["voc"]["mAP07"].is_number() && json["voc"]["per_class"].is_array(),
        "{json}"
    );
}

#[test]
fn trains_and_evaluates_from_a_yolo_data_yaml() {
    let Some((coco, images, ids)) = coco128_six() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_yolo(
        &dir.path().join("yolo"),
        &coco,
        &images,
        &ids[..4],
        &ids[4..],
    );
    let out = dir.path().join("run");
    tiny_train(&yaml, &out);
    let stdout = assert_ok(&detect(&[
        "eval",
        "--weights",
        out.join("model_final.safetensors").to_str().unwrap(),
        "--annotations",
        yaml.to_str().unwrap(),
    ]));
    assert!(
        stdout.contains("Average Precision  (AP) @[ IoU=0.50:0.95"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Pascal VOC"),
        "VOC AP only for VOC roots: {stdout}"
    );
}

#[test]
fn layout_errors_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("data.yaml");
    std::fs::write(&yaml, "names: [a]\ntrain: nowhere\n").unwrap();
    let out = detect(&[
        "train",
        "--annotations",
        yaml.to_str().unwrap(),
        "--iters",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("`train` names") && err.contains("which does not exist"),
        "{err}"
    );
    let out = detect(&[
        "train",
        "--annotations",
        yaml.to_str().unwrap(),
        "--train-split",
        "trainval",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apply to Pascal VOC roots only"), "{err}");
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a,b\n").unwrap();
    let out = detect(&["train", "--annotations", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.csv is not an annotation layout"), "{err}");
    let out = detect(&["train", "--annotations", "VOCdevkit/VOC2077"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--annotations VOCdevkit/VOC2077 does not exist"),
        "{err}"
    );
}
