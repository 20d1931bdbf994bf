//! `--max-image-pixels` (issue 16): the decode limit, PIL's `MAX_IMAGE_PIXELS` bomb size by
//! default, can be raised on `train`, `eval` and `predict`. A 64x64 PNG (4,096 pixels) is
//! refused under a limit of 4,095, with an error naming the file, the limit and the option,
//! and accepted under 4,096.
mod bad_input_support;

use std::time::Duration;

use bad_input_support::{
    detect_with_deadline, text, tiny_coco_train_args, write_coco, write_model, write_png,
};

const DEADLINE: Duration = Duration::from_secs(180);

/// The 64x64 test images hold this many pixels.
const PIXELS: u64 = 64 * 64;

/// Checks that `stderr` refuses `file` for the limit `PIXELS - 1` and names the option.
fn assert_refused(stderr: &str, file: &str) {
    for part in [
        file,
        "64x64 pixels",
        &format!("over the limit of {} pixels", PIXELS - 1),
        "--max-image-pixels",
    ] {
        assert!(stderr.contains(part), "missing {part:?} in: {stderr}");
    }
}

#[test]
fn predict_refuses_an_image_over_max_image_pixels_and_accepts_it_when_raised() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("model.safetensors"));
    write_png(&dir.path().join("a.png"));
    let run = |limit: u64| {
        let limit = limit.to_string();
        let args = [
            "predict",
            "a.png",
            "--weights",
            "model.safetensors",
            "--max-image-pixels",
            &limit,
        ];
        detect_with_deadline(&args, dir.path(), DEADLINE)
    };
    let refused = run(PIXELS - 1);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert_refused(&text(&refused.stderr), "a.png");
    let accepted = run(PIXELS);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
}

#[test]
fn train_refuses_an_image_over_max_image_pixels_and_trains_when_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_coco(dir.path(), 2);
    let run = |limit: u64, out: &str| {
        let limit = limit.to_string();
        let mut args = tiny_coco_train_args(&annotations, &images, out);
        args.extend(["--iters", "1", "--batch-size", "1", "--max-image-pixels"]);
        args.push(&limit);
        detect_with_deadline(&args, dir.path(), DEADLINE)
    };
    let refused = run(PIXELS - 1, "refused");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert_refused(&text(&refused.stderr), ".png");
    let accepted = run(PIXELS, "accepted");
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    assert!(dir
        .path()
        .join("accepted/model_final.safetensors")
        .is_file());
}

#[test]
fn eval_refuses_an_image_over_max_image_pixels_and_evaluates_when_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_coco(dir.path(), 1);
    write_model(&dir.path().join("model.safetensors"));
    let run = |limit: u64| {
        let limit = limit.to_string();
        let args = [
            "eval",
            "--weights",
            "model.safetensors",
            "--annotations",
            &annotations,
            "--images",
            &images,
            "--max-image-pixels",
            &limit,
        ];
        detect_with_deadline(&args, dir.path(), DEADLINE)
    };
    let refused = run(PIXELS - 1);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert_refused(&text(&refused.stderr), "img0.png");
    let accepted = run(PIXELS);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    assert!(text(&accepted.stdout).contains("Average Precision"));
}

#[test]
fn max_image_pixels_outside_its_range_is_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"));
    for value in ["0", "4294967296"] {
        let args = ["predict", "a.png", "--max-image-pixels", value];
        let result = detect_with_deadline(&args, dir.path(), DEADLINE);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--max-image-pixels must be in 1..=4294967295 pixels")
                && stderr.contains(&format!("got {value}")),
            "{stderr}"
        );
    }
}

#[test]
fn max_image_pixels_is_refused_where_no_file_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(&results, "[]").unwrap();
    let (annotations, _) = write_coco(dir.path(), 1);
    let eval = [
        "eval",
        "--annotations",
        &annotations,
        "--results",
        results.to_str().unwrap(),
        "--max-image-pixels",
        "5000",
    ];
    let train = ["train", "--dataset", "shapes", "--max-image-pixels", "5000"];
    for (args, expected) in [
        (&eval[..], "--results"),
        (&train[..], "not to the rendered `shapes` dataset"),
    ] {
        let result = detect_with_deadline(args, dir.path(), DEADLINE);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--max-image-pixels") && stderr.contains(expected),
            "{stderr}"
        );
    }
}
