//! `detect eval --results` refuses the options that only apply to evaluating a model, and
//! error messages say each thing once.
mod bad_input_support;

use std::time::Duration;

use bad_input_support::{detect_with_deadline, text, write_coco};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn eval_results_refuses_model_only_options() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_coco(dir.path(), 1);
    let results = dir.path().join("results.json");
    std::fs::write(
        &results,
        r#"[{"image_id": 1, "category_id": 1, "bbox": [16, 16, 32, 32], "score": 0.9}]"#,
    )
    .unwrap();
    let base = [
        "eval",
        "--annotations",
        annotations.as_str(),
        "--results",
        results.to_str().unwrap(),
    ];
    // The plain run works, so a failure below is the option's.
    let result = detect_with_deadline(&base, dir.path(), DEADLINE);
    assert!(result.status.success(), "{}", text(&result.stderr));
    for extra in [
        &["--device", "cpu"][..],
        &["--backbone", "resnet50"],
        &["--images", images.as_str()],
        &["--skip-bad-images"],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let result = detect_with_deadline(&args, dir.path(), DEADLINE);
        let stderr = text(&result.stderr);
        assert_eq!(
            result.status.code(),
            Some(2),
            "{extra:?} accepted: {stderr}"
        );
        assert!(
            stderr.contains(extra[0]) && stderr.contains("--results"),
            "{extra:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_gives_the_os_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(&results, "[]").unwrap();
    let images = dir.path().to_str().unwrap();
    for args in [
        vec![
            "eval",
            "--annotations",
            missing,
            "--results",
            results.to_str().unwrap(),
        ],
        vec![
            "train",
            "--annotations",
            missing,
            "--images",
            images,
            "--iters",
            "1",
        ],
    ] {
        let result = detect_with_deadline(&args, dir.path(), DEADLINE);
        assert_eq!(result.status.code(), Some(2));
        let stderr = text(&result.stderr);
        // The OS's own words ("No such file or directory (os error 2)" on Linux), once.
        assert!(stderr.contains("missing.json"), "{stderr}");
        assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
    }
}
