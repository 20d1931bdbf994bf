//! `detect eval` end to end on the shared coco_val80 reference.
use std::path::PathBuf;
use std::process::Command;

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

#[test]
fn eval_results_file_prints_pycocotools_summary_and_writes_metrics_json() {
    let Some(root) = shared_data() else { return };
    let val80 = root.join("coco_val80");
    let out = std::env::temp_dir().join(format!("detect_eval_cli_{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_detect"))
        .arg("eval")
        .arg("--annotations")
        .arg(val80.join("annotations.json"))
        .arg("--results")
        .arg(val80.join("eval_reference/detections_synthetic.json"))
        .arg("--output-json")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(val80.join("eval_reference/pycocotools_bbox.json")).unwrap(),
    )
    .unwrap();
    let summary = reference["summarize_output"].as_str().unwrap().trim_end();
    assert!(stdout.starts_with(summary), "{stdout}");
    assert!(stdout.contains("toothbrush"));

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).ok();
    let keys = [
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
    ];
    let stats = reference["stats_list"].as_array().unwrap();
    for (key, theirs) in keys.iter().zip(stats) {
        let ours = metrics[key].as_f64().unwrap();
        // the shared reference keeps 6 decimals
        assert!(
            (ours - theirs.as_f64().unwrap()).abs() <= 5e-7,
            "{key}: {ours} vs {theirs}"
        );
    }
    let person = metrics["per_category"]["person"].as_f64().unwrap();
    let theirs = reference["per_category_ap"]["person"].as_f64().unwrap();
    assert!((person - theirs).abs() <= 5e-7);
}

#[test]
fn eval_results_without_annotations_says_what_is_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(["eval", "--results", "results.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --annotations"), "{stderr}");
}

#[test]
fn eval_with_unknown_image_in_results_fails_naming_it() {
    let Some(root) = shared_data() else { return };
    let results = std::env::temp_dir().join(format!("detect_eval_bad_{}.json", std::process::id()));
    std::fs::write(
        &results,
        r#"[{"image_id": 123456789, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}]"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_detect"))
        .arg("eval")
        .arg("--annotations")
        .arg(root.join("coco_val80/annotations.json"))
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    std::fs::remove_file(&results).ok();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("image id 123456789"), "{stderr}");
}
