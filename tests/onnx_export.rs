//! `detect export`: the exported ONNX graph against `detect predict` on the same images.
//!
//! The fixture (`tests/fixtures/onnx/outputs.json`) holds, for each exported model, the
//! SHA-256 of the exported file and ONNX Runtime's outputs on committed images, written by
//! `scripts/gen_onnx_fixture.py` (which exports through [`write_onnx_exports`] below, runs
//! `onnx.checker` and ONNX Runtime). Here we re-export, check the bytes are the recorded ones
//! (an exporter change forces a regenerated fixture), and compare the stored outputs with our
//! own detections: same count, same category ids, boxes within 1e-2 px, scores within 1e-4
//! (the tolerances; convolutions summed in another order and the resize's f32
//! coordinate arithmetic move values by ~1e-6 relative, which box decoding scales by the box
//! size).
use std::path::{Path, PathBuf};

use backbones::{BackboneConfig, BlockForm, ResNextConfig};
use candle_core::Device;
use datasets::shapes::{render, ShapesConfig, Split};
use datasets::transforms::TransformConfig;
use detect::export::export_detector;
use detect::model::config::DetectorConfig;
use detect::predict::pipeline::detect_image;
use detect::weights::load::{
    load_detector, load_torchvision_weights, read_weight_map, LoadedDetector,
};
use detect::weights::resolve::ResolvedWeights;
use heads::roi_heads::RoiHeadsConfig;
use heads::rpn::RpnConfig;
use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Where a fixture model's architecture comes from.
#[derive(Clone, Copy)]
enum Arch {
    /// torchvision-layout weights with this architecture.
    Torchvision(fn(usize) -> DetectorConfig),
    /// A `detect train` model file, which carries its own architecture and class names.
    Trained,
}

/// The models the fixture covers: name, weights file (repository-relative), architecture,
/// opset. `tiny_no_detections` is the same network with a class-score threshold no box
/// reaches: the graph's zero-detection path (empty NMS, gathers and outputs).
/// `shapes_trained` is `detect train --dataset shapes --iters 400` (seed 0), trained so that
/// its detections are real ones, not a random network's.
const MODELS: [(&str, &str, Arch, i64); 4] = [
    (
        "tiny_random",
        TINY_WEIGHTS,
        Arch::Torchvision(tiny_config),
        17,
    ),
    (
        "tiny_no_detections",
        TINY_WEIGHTS,
        Arch::Torchvision(no_detections_config),
        17,
    ),
    (
        "tiny_random_opset16",
        TINY_WEIGHTS,
        Arch::Torchvision(tiny_config),
        16,
    ),
    ("shapes_trained", SHAPES_WEIGHTS, Arch::Trained, 17),
];
const TINY_WEIGHTS: &str = "tests/fixtures/model/weights.safetensors";
const SHAPES_WEIGHTS: &str = "tests/fixtures/onnx/shapes_trained.safetensors";

fn no_detections_config(num_classes: usize) -> DetectorConfig {
    let mut config = tiny_config(num_classes);
    config.roi_heads.score_thresh = 0.999;
    config
}

/// tests/model_parity.rs's reduced architecture (tests/fixtures/model/gen.py).
fn tiny_config(num_classes: usize) -> DetectorConfig {
    let body = ResNextConfig {
        layers: [1, 1, 2, 1],
        groups: 4,
        width_per_group: 16,
        stem_channels: 8,
        planes: [8, 16, 32, 64],
        block_form: BlockForm::Grouped,
        bn_eps: 1e-5,
    };
    DetectorConfig {
        backbone_name: "tiny (tests/fixtures/model/gen.py)".into(),
        backbone: BackboneConfig {
            body,
            fpn_channels: 16,
            trainable_layers: 3,
        },
        rpn: RpnConfig::default(),
        roi_heads: RoiHeadsConfig {
            representation_size: 64,
            ..RoiHeadsConfig::default()
        },
        transform: TransformConfig {
            min_size: vec![160],
            max_size: 256,
            ..TransformConfig::default()
        },
        num_classes,
    }
}

fn load(weights: &str, arch: Arch) -> LoadedDetector {
    let path = Path::new(ROOT).join(weights);
    match arch {
        Arch::Torchvision(config) => {
            load_torchvision_weights(&path, &Device::Cpu, |n| Ok(config(n))).unwrap()
        }
        Arch::Trained => {
            load_detector(&ResolvedWeights::file(path), None, None, &Device::Cpu).unwrap()
        }
    }
}

fn export(weights: &str, arch: Arch, opset: i64) -> Vec<u8> {
    let loaded = load(weights, arch);
    let path = Path::new(ROOT).join(weights);
    let map = read_weight_map(&path, &Device::Cpu).unwrap();
    export_detector(loaded.model.config(), &loaded.labels, map, opset).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fixture() -> serde_json::Value {
    let path = Path::new(ROOT).join("tests/fixtures/onnx/outputs.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/gen_onnx_fixture.py)", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Not a test: writes each model's export to `$DETECT_ONNX_OUT/<name>.onnx` for
/// scripts/gen_onnx_fixture.py.
#[test]
#[ignore = "run by scripts/gen_onnx_fixture.py"]
fn write_onnx_exports() {
    let out = PathBuf::from(std::env::var("DETECT_ONNX_OUT").expect("DETECT_ONNX_OUT"));
    for (name, weights, arch, opset) in MODELS {
        std::fs::write(
            out.join(format!("{name}.onnx")),
            export(weights, arch, opset),
        )
        .unwrap();
    }
    // Two `shapes` validation images for the trained model (rendered, so they are committed
    // as the pixels both sides read).
    let config = ShapesConfig::default();
    for index in [0, 1] {
        let (image, _) = render(&config, Split::Val, index);
        let path = Path::new(ROOT).join(format!("tests/fixtures/onnx/shapes_val{index}.png"));
        image::RgbImage::from_raw(image.width as u32, image.height as u32, image.pixels)
            .unwrap()
            .save(path)
            .unwrap();
    }
}

#[test]
fn export_is_deterministic_and_matches_the_recorded_sha256() {
    let fx = fixture();
    for (name, weights, arch, opset) in MODELS {
        let first = export(weights, arch, opset);
        let second = export(weights, arch, opset);
        assert!(first == second, "{name}: two exports differ");
        let recorded = fx["models"][name]["sha256"].as_str().unwrap();
        assert_eq!(
            sha256(&first),
            recorded,
            "{name}: the export changed; regenerate with scripts/gen_onnx_fixture.py"
        );
    }
}

#[test]
fn onnx_runtime_outputs_match_detect_predict() {
    let fx = fixture();
    for (name, weights, arch, _) in MODELS {
        let loaded = load(weights, arch);
        let runs = fx["models"][name]["images"].as_array().unwrap();
        assert!(!runs.is_empty());
        for run in runs {
            let image_path = Path::new(ROOT).join(run["image"].as_str().unwrap());
            let image = datasets::image::load_rgb(&image_path).unwrap();
            let ours = detect_image(&loaded.model, &image, &Device::Cpu).unwrap();
            let what = format!("{name} on {}", image_path.display());
            let theirs = stored_detections(run);
            assert_eq!(ours.len(), theirs.len(), "{what}: detection count");
            let expect_none = run["expect_none"].as_bool().unwrap();
            assert_eq!(
                ours.is_empty(),
                expect_none,
                "{what}: no detections expected"
            );
            let (mut box_diff, mut score_diff) = (0f32, 0f32);
            for (i, (d, (b, score, id))) in ours.iter().zip(&theirs).enumerate() {
                let our_id = loaded.labels.category(d.label).id as i64;
                assert_eq!(our_id, *id, "{what}: category of detection {i}");
                score_diff = score_diff.max((d.score - score).abs());
                for (ours, theirs) in d.box_xyxy.iter().zip(b) {
                    box_diff = box_diff.max((ours - theirs).abs());
                }
            }
            eprintln!(
                "{what}: {} detections, max |box diff| {box_diff:.2e} px, max |score diff| \
                 {score_diff:.2e}",
                ours.len()
            );
            assert!(box_diff <= 1e-2, "{what}: boxes differ by {box_diff} px");
            assert!(score_diff <= 1e-4, "{what}: scores differ by {score_diff}");
        }
    }
}

/// ONNX Runtime's `(box, score, category id)` rows of one fixture run.
fn stored_detections(run: &serde_json::Value) -> Vec<([f32; 4], f32, i64)> {
    let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    let boxes = run["boxes"].as_array().unwrap();
    let scores = run["scores"].as_array().unwrap();
    let labels = run["labels"].as_array().unwrap();
    assert!(boxes.len() == scores.len() && scores.len() == labels.len());
    boxes
        .iter()
        .zip(scores.iter().zip(labels))
        .map(|(b, (s, l))| {
            let b = b.as_array().unwrap();
            (
                [f(&b[0]), f(&b[1]), f(&b[2]), f(&b[3])],
                f(s),
                l.as_i64().unwrap(),
            )
        })
        .collect()
}

/// The command: writes the file it reports (size and SHA-256 of the bytes on disk), refuses
/// an opset it does not support and a run without weights, exit code 2 with the reason.
#[test]
fn export_command_writes_the_reported_file_and_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("shapes.onnx");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_detect"))
            .args(["export", "--output", output.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let random = [
        "--random-init",
        "--backbone",
        "resnext_tiny_8x4d",
        "--num-classes",
        "3",
    ];
    let out = run(&random);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&output).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&sha256(&bytes)), "{stdout}");
    assert!(
        stdout.contains(&format!("{} bytes", bytes.len())),
        "{stdout}"
    );

    let out = run(&[&random[..], &["--opset", "18"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opset 18 is not supported"), "{stderr}");

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
}
