//! `detect bench` (hidden; our side of scripts/gpu_bench.py, issue 12) on the CPU with the
//! small `shapes` backbone: the JSON line the script reads, the weights file the reference side
//! loads, the profiled extra iteration, and refused arguments.
use std::process::Command;

use candle_core::Device;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .arg("bench")
        .args([
            "--backbone",
            "resnext_tiny_8x4d",
            "--height",
            "64",
            "--width",
            "96",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn json_line(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn predict_prints_timings_and_writes_the_weights_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    let out = bench(&[
        "--task",
        "predict",
        "--batch",
        "2",
        "--warmup",
        "1",
        "--iters",
        "3",
        "--weights-out",
        weights.to_str().unwrap(),
    ]);
    let j = json_line(&out);
    assert_eq!(j["side"], "detect");
    assert_eq!(j["task"], "predict");
    assert_eq!(j["precision"], "tf32");
    assert_eq!(j["batch"], 2);
    let seconds: Vec<f64> = serde_json::from_value(j["seconds"].clone()).unwrap();
    assert_eq!(seconds.len(), 3, "the timed iterations only");
    assert!(seconds.iter().all(|s| *s > 0.0));
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = j["median_s"].as_f64().unwrap();
    assert_eq!(median, sorted[1]);
    let ips = j["images_per_s"].as_f64().unwrap();
    assert!(
        (ips - 2.0 / median).abs() < 1e-9 * ips,
        "{ips} vs 2 / {median}"
    );
    assert!(j["profile"].is_null(), "no --profile");

    // The whole detector's state dict under torchvision's names, and nothing half-written.
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    for key in [
        "backbone.body.conv1.weight",
        "backbone.body.layer4.0.conv2.weight",
        "backbone.body.layer1.0.bn1.running_var",
        "backbone.fpn.layer_blocks.3.0.weight",
        "rpn.head.conv.0.0.weight",
        "roi_heads.box_head.fc6.weight",
        "roi_heads.box_predictor.bbox_pred.bias",
    ] {
        assert!(tensors.contains_key(key), "{key} missing");
    }
    assert_eq!(
        tensors["roi_heads.box_predictor.cls_score.weight"].dims()[0],
        91,
        "COCO's 91 classes, as the reference builds"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["w.safetensors"]);
}

#[test]
fn train_in_bf16_with_a_profile() {
    let out = bench(&[
        "--task",
        "train",
        "--batch",
        "2",
        "--warmup",
        "0",
        "--iters",
        "2",
        "--precision",
        "bf16",
        "--profile",
    ]);
    let j = json_line(&out);
    assert_eq!(j["task"], "train");
    assert_eq!(j["precision"], "bf16");
    assert_eq!(j["seconds"].as_array().unwrap().len(), 2);
    let profile = j["profile"].as_str().expect("a profile");
    for stage in ["backbone", "rpn", "roi_heads", "backward", "optimizer"] {
        assert!(profile.contains(stage), "{stage} missing: {profile}");
    }
    assert!(
        profile.contains("transfers 0 (0 B)"),
        "nothing crosses a bus on the CPU: {profile}"
    );
}

#[test]
fn bad_arguments_are_refused() {
    for (args, expected) in [
        (&["--task", "predict", "--iters", "0"][..], "--iters"),
        (&["--task", "train", "--batch", "0"][..], "--batch"),
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(["bench", "--task", "predict", "--height", "16"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 32"), "{err}");
}
