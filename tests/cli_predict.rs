//! End-to-end tests of `detect predict`: the built binary on a real COCO image, with small
//! weights generated here (the `shapes` architecture, random init, the class bias pushed so
//! that every surviving box is one known class), in torchvision's layout (`--backbone`) and as
//! a `detect train` model file found without `--weights`.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use detect::model::config::{DetectorConfig, SHAPES_BACKBONE};
use detect::model::faster_rcnn::FasterRcnn;
use detect::train::checkpoint::{save_model, ModelMeta};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
/// 640x480, a numeric file stem (COCO image id 5001).
const IMAGE: &str = "coco_val80/images/000000005001.jpg";
const CLS_SCORE_BIAS: &str = "roi_heads.box_predictor.cls_score.bias";

/// The real image, or `None` (skipped) when the shared data is absent outside CI.
fn image() -> Option<PathBuf> {
    let path = Path::new(DATA).join(IMAGE);
    if path.is_file() {
        return Some(path);
    }
    eprintln!("shared data missing: {}", path.display());
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "the shared data is required in CI"
    );
    eprintln!("skipped");
    None
}

/// A randomly initialised `shapes`-architecture detector's state dict (torchvision names),
/// with the class bias of `label` at +10 so that every box scores ~1 for that class.
fn random_weights(num_classes: usize, label: usize) -> HashMap<String, Tensor> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    FasterRcnn::new(&DetectorConfig::shapes(num_classes), vb).unwrap();
    let mut tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let mut bias = vec![0f32; num_classes];
    bias[label] = 10.0;
    tensors.insert(
        CLS_SCORE_BIAS.into(),
        Tensor::new(bias, &Device::Cpu).unwrap(),
    );
    tensors
}

fn predict(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .current_dir(dir)
        .arg("predict")
        .args(args)
        .output()
        .expect("the detect binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks the printed lines: `FILE<TAB>NAME<TAB>SCORE<TAB>x1 y1 x2 y2`, all of class `name`,
/// scores >= `threshold`, boxes inside the 640x480 image. Returns the number of lines.
fn check_lines(stdout: &str, name: &str, threshold: f32) -> usize {
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert_eq!(fields[0], "000000005001.jpg", "{line}");
        assert_eq!(fields[1], name, "{line}");
        let score: f32 = fields[2].parse().unwrap();
        assert!(score >= threshold && score <= 1.0, "{line}");
        let b: Vec<f32> = fields[3].split(' ').map(|v| v.parse().unwrap()).collect();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[0] <= b[2] && b[1] <= b[3],
            "{line}"
        );
        assert!(b[2] <= 640.0 && b[3] <= 480.0, "{line}");
    }
    lines.len()
}

#[test]
fn predicts_with_torchvision_layout_weights_and_writes_outputs() {
    let Some(image) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("tiny_coco.safetensors");
    candle_core::safetensors::save(&random_weights(91, 18), &weights).unwrap();
    let image = image.to_str().unwrap();
    let output = predict(
        dir.path(),
        &[
            image,
            "--weights",
            weights.to_str().unwrap(),
            "--backbone",
            SHAPES_BACKBONE,
            "--score-threshold",
            "0.9",
            "--output",
            "drawn",
            "--json",
            "dets.json",
        ],
    );
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "predict failed: {}",
        text(&output.stderr)
    );
    // 91 outputs: label 18 is COCO's "dog".
    let printed = check_lines(&stdout, "dog", 0.9);
    assert!(printed > 0, "detections printed: {stdout}");

    let drawn = image::open(dir.path().join("drawn/000000005001.png")).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (640, 480));
    let original = image::open(image).unwrap().to_rgb8();
    assert_ne!(drawn.to_rgb8(), original, "boxes are drawn");

    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("dets.json")).unwrap()).unwrap();
    assert_eq!(results.len(), printed, "one result per printed line");
    for r in &results {
        assert_eq!(r["image_id"], 5001);
        assert_eq!(r["category_id"], 18);
        assert_eq!(r["category_name"], "dog");
        let bbox: Vec<f64> = serde_json::from_value(r["bbox"].clone()).unwrap();
        assert!(bbox[2] >= 0.0 && bbox[3] >= 0.0 && bbox[0] + bbox[2] <= 640.0 + 1e-3);
        assert!(r["score"].as_f64().unwrap() >= 0.9);
    }
}

#[test]
fn uses_the_newest_trained_model_without_weights() {
    let Some(image) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A `detect train` model of 2 categories with COCO ids 3 and 7: label 2 is id 7, "train".
    let config = DetectorConfig::shapes(3);
    let tensors: BTreeMap<String, Tensor> = random_weights(3, 2).into_iter().collect();
    let meta = ModelMeta {
        class_names: vec!["car".into(), "train".into()],
        config: serde_json::json!({
            "detector": config,
            "categories": {"categories": [{"id": 3, "name": "car"}, {"id": 7, "name": "train"}]},
        }),
    };
    let run = dir.path().join("runs/shapes-1");
    std::fs::create_dir_all(&run).unwrap();
    save_model(&run.join("model_final.safetensors"), &tensors, &meta).unwrap();
    let output = predict(
        dir.path(),
        &[image.to_str().unwrap(), "--json", "dets.json"],
    );
    assert!(
        output.status.success(),
        "predict failed: {}",
        text(&output.stderr)
    );
    let printed = check_lines(&text(&output.stdout), "train", 0.5);
    assert!(printed > 0);
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("dets.json")).unwrap()).unwrap();
    assert_eq!(results.len(), printed, "one JSON result per printed line");
    assert!(results.iter().all(|r| r["category_id"] == 7));
}

#[test]
fn profile_prints_each_stage_and_no_transfer_on_cpu() {
    let Some(image) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("shapes.safetensors");
    candle_core::safetensors::save(&random_weights(91, 18), &weights).unwrap();
    let output = predict(
        dir.path(),
        &[
            image.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--backbone",
            SHAPES_BACKBONE,
            "--profile",
        ],
    );
    assert!(
        output.status.success(),
        "predict failed: {}",
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("profile image 1 ("))
        .unwrap_or_else(|| panic!("no profile line:\n{stderr}"));
    let mut rest = line;
    for stage in ["data", "backbone", "rpn", "roi_heads"] {
        let at = rest
            .find(&format!(" {stage} "))
            .unwrap_or_else(|| panic!("stage {stage} missing or out of order: {line}"));
        rest = &rest[at..];
    }
    assert!(line.contains("; transfers 0 (0 B), host reads "), "{line}");
}

#[test]
fn missing_weights_and_missing_backbone_fail_with_hints() {
    let Some(image) = image() else { return };
    let image = image.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = predict(dir.path(), &[image]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("runs/*/model_final.safetensors") && stderr.contains("hint:"),
        "{stderr}"
    );

    let weights = dir.path().join("w.safetensors");
    candle_core::safetensors::save(&random_weights(91, 1), &weights).unwrap();
    let output = predict(dir.path(), &[image, "--weights", weights.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--backbone NAME") && stderr.contains("hint:"),
        "{stderr}"
    );

    // The wrong architecture: a shape mismatch naming the key.
    let output = predict(
        dir.path(),
        &[
            image,
            "--weights",
            weights.to_str().unwrap(),
            "--backbone",
            "resnet50",
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("backbone.body."), "{stderr}");
}
