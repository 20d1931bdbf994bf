//! `detect train` on inputs that used to hang or mislead: too few images for a batch, every
//! image unreadable, sizes of 0, resuming past unreadable images, and the plain log lines
//! printed when stdout is not a terminal. Every run has a deadline: a hang fails the test.
mod bad_input_support;

use std::path::Path;
use std::time::Duration;

use bad_input_support::{detect_with_deadline, text, tiny_coco_train_args, write_coco};

/// Long enough for a tiny run on a loaded 2-core machine; a hang never ends.
const DEADLINE: Duration = Duration::from_secs(180);

/// A tiny shapes run (64 px images, 4 validation images) with `extra` options.
fn shapes_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--dataset",
        "shapes",
        "--shapes-val-images",
        "4",
        "--shapes-image-size",
        "64",
        "--output",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn fewer_images_than_the_batch_is_an_error_naming_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = shapes_args(
        out.to_str().unwrap(),
        &[
            "--shapes-train-images",
            "1",
            "--batch-size",
            "2",
            "--iters",
            "2",
            "--min-size",
            "64",
            "--max-size",
            "64",
        ],
    );
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("1 usable image") && stderr.contains("batch size 2"),
        "{stderr}"
    );
}

#[test]
fn every_image_skipped_is_an_error_not_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_coco(dir.path(), 4);
    for i in 0..4 {
        std::fs::write(Path::new(&images).join(format!("img{i}.png")), b"not a png").unwrap();
    }
    let out = dir.path().join("run");
    let mut args = tiny_coco_train_args(&annotations, &images, out.to_str().unwrap());
    args.extend(["--skip-bad-images", "--batch-size", "2", "--iters", "2"]);
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("all 4 images") && stderr.contains("unreadable"),
        "{stderr}"
    );
}

#[test]
fn sizes_of_zero_are_refused_with_the_valid_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    // Each case: one option at 0, the others at working values (a run of 1 iteration).
    let working = [
        ("--min-size", "64"),
        ("--max-size", "64"),
        ("--batch-size", "2"),
        ("--shapes-image-size", "64"),
        ("--log-period", "1"),
        ("--checkpoint-period", "1"),
    ];
    for (zero, _) in working {
        let mut args = vec!["train", "--dataset", "shapes", "--shapes-train-images", "2"];
        args.extend(["--shapes-val-images", "2", "--iters", "1", "--output", out]);
        for (option, value) in working {
            args.extend([option, if option == zero { "0" } else { value }]);
        }
        let result = detect_with_deadline(&args, dir.path(), DEADLINE);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{zero} 0 accepted: {stderr}");
        // The error names the option and its valid range ("N..=M" or "at least N").
        assert!(
            stderr.contains(zero) && (stderr.contains("..=") || stderr.contains("at least")),
            "{zero} 0: {stderr}"
        );
    }
    // A longest side below the shorter side cannot be honoured either.
    let mut args = shapes_args(out, &["--shapes-train-images", "2", "--iters", "1"]);
    args.extend(["--min-size", "128", "--max-size", "64"]);
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-size") && stderr.contains("128"),
        "{stderr}"
    );
}

#[test]
fn plain_log_lines_when_stdout_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = shapes_args(
        out.to_str().unwrap(),
        &[
            "--shapes-train-images",
            "4",
            "--batch-size",
            "2",
            "--iters",
            "4",
            "--log-period",
            "2",
            "--min-size",
            "64",
            "--max-size",
            "64",
        ],
    );
    let result = detect_with_deadline(&args, dir.path(), DEADLINE);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let stdout = text(&result.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("iter:")).collect();
    assert_eq!(lines.len(), 2, "one line per 2 iterations: {stdout}");
    for (line, iteration) in lines.iter().zip(["iter: 2/4", "iter: 4/4"]) {
        assert!(line.contains(iteration), "{line}");
        for field in [
            "total_loss: ",
            "loss_classifier: ",
            "loss_box_reg: ",
            "loss_objectness: ",
            "loss_rpn_box_reg: ",
            "lr: ",
            " s/iter",
            "eta: ",
        ] {
            assert!(line.contains(field), "`{field}` missing: {line}");
        }
    }
    assert!(lines[1].contains("eta: 0:00:00"), "{}", lines[1]);
}
