//! End-to-end tests of `detect train` on tiny `shapes` runs: the output folder, resume equality,
//! the non-finite-loss stop, and an unreadable dataset.
use std::path::Path;
use std::process::{Command, Output};

fn detect(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the detect binary runs")
}

/// A tiny shapes run: 64 px images, 8 training and 4 validation images.
fn tiny_train(out: &Path, extra: &[&str]) -> Output {
    tiny_train_logging(out, "1", extra)
}

/// [`tiny_train`] logging the losses every `log_period` iterations.
fn tiny_train_logging(out: &Path, log_period: &str, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "train",
        "--dataset",
        "shapes",
        "--shapes-train-images",
        "8",
        "--shapes-val-images",
        "4",
        "--shapes-image-size",
        "64",
        "--min-size",
        "64",
        "--max-size",
        "64",
        "--batch-size",
        "2",
        "--log-period",
        log_period,
        "--output",
        out,
    ];
    args.extend_from_slice(extra);
    detect(&args, Path::new(out).parent().unwrap())
}

fn train_losses(out: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "train")
        .map(|v| {
            (
                v["iteration"].as_u64().unwrap(),
                v["total_loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "detect failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn writes_config_metrics_plot_checkpoints_and_final_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // `--precision fp32` (not the default) must reach config.json; on CPU it changes nothing.
    let result = tiny_train(
        &out,
        &[
            "--iters",
            "4",
            "--checkpoint-period",
            "2",
            "--precision",
            "fp32",
        ],
    );
    assert_ok(&result);
    for file in [
        "config.json",
        "metrics.jsonl",
        "loss.png",
        "last_checkpoint",
        "model_final.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let last = std::fs::read_to_string(out.join("last_checkpoint")).unwrap();
    assert!(
        out.join(last.trim()).is_file(),
        "last_checkpoint names a missing file: {last}"
    );
    let losses = train_losses(&out);
    assert_eq!(losses.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(losses.iter().all(|l| l.1.is_finite() && l.1 > 0.0));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["detector"]["num_classes"], 4,
        "3 shapes + background"
    );
    assert_eq!(config["precision"], "fp32");
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(
        text.contains("\"type\":\"eval\""),
        "no evaluation line in metrics.jsonl"
    );
}

#[test]
fn resumed_run_has_the_losses_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    assert_ok(&tiny_train(
        &full,
        &["--iters", "6", "--checkpoint-period", "3"],
    ));
    let expected = train_losses(&full);

    // Interrupted after iteration 3: the folder as it was then (checkpoint 3, its log lines).
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let ckpt = "model_0000003.safetensors";
    std::fs::copy(full.join(ckpt), cut.join(ckpt)).unwrap();
    std::fs::write(cut.join("last_checkpoint"), ckpt).unwrap();
    let head: String = std::fs::read_to_string(full.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(cut.join("metrics.jsonl"), head).unwrap();

    assert_ok(&tiny_train(
        &cut,
        &["--iters", "6", "--checkpoint-period", "3", "--resume"],
    ));
    let resumed = train_losses(&cut);
    assert_eq!(resumed.len(), 6);
    for ((i, a), (j, b)) in expected.iter().zip(&resumed) {
        assert_eq!(i, j);
        // Same ops on the same data in the same order on CPU: equal to the last bit.
        assert_eq!(a, b, "iteration {i}: uninterrupted {a}, resumed {b}");
    }
}

#[test]
fn absurd_learning_rate_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let result = tiny_train(
        &out,
        &["--iters", "40", "--checkpoint-period", "1", "--lr", "1e12"],
    );
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    // Either the loss or, one step earlier, a weight overflows first; both stop the run.
    assert!(
        stderr.contains("non-finite") && stderr.contains("iteration"),
        "{stderr}"
    );
    // The last checkpoint is a good one and loads.
    let last = std::fs::read_to_string(out.join("last_checkpoint")).unwrap();
    let tensors = candle_core::safetensors::load(out.join(last.trim()), &candle_core::Device::Cpu)
        .expect("the last checkpoint loads");
    assert!(tensors.values().all(|t| {
        let v: Vec<f32> = t
            .flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap();
        v.iter().all(|x| x.is_finite())
    }));
    assert!(!out.join("model_final.safetensors").exists());
}

#[test]
fn coco_without_data_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(["train", "--dataset", "coco"])
        .current_dir(dir.path())
        .env("DETECT_DATASETS", dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("nowhere"), "{stderr}");
    assert!(stderr.contains("DETECT_DATASETS"), "{stderr}");
}

#[test]
fn eval_of_the_final_model_reproduces_the_training_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Long enough that the metrics are not all zero (AR1 and AP75 are 0 after 3 iterations).
    assert_ok(&tiny_train(&out, &["--iters", "40"]));
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let last_eval = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|v| v["type"] == "eval")
        .expect("an evaluation line");
    let metrics = dir.path().join("metrics.json");
    let model = out.join("model_final.safetensors");
    let result = detect(
        &[
            "eval",
            "--weights",
            model.to_str().unwrap(),
            "--dataset",
            "shapes",
            "--shapes-val-images",
            "4",
            "--shapes-image-size",
            "64",
            "--output-json",
            metrics.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_ok(&result);
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    for key in ["AP", "AP50", "AP75", "AR1", "AR10", "AR100"] {
        assert_eq!(got[key], last_eval["metrics"][key], "{key}");
    }
    assert!(
        got["AR100"].as_f64().unwrap() > 0.0,
        "the model finds something: {got}"
    );
    assert!(got["per_category"]["circle"].is_number());
    let results: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("metrics.results.json")).unwrap(),
    )
    .unwrap();
    assert!(!results.is_empty(), "the results file holds the detections");
}

#[test]
fn resume_with_different_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    assert_ok(&tiny_train(
        &out,
        &["--iters", "2", "--checkpoint-period", "1"],
    ));
    let result = tiny_train(&out, &["--iters", "4", "--seed", "9", "--resume"]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("differ from the checkpoint") && stderr.contains("seed"),
        "{stderr}"
    );
}

#[test]
fn profile_prints_each_stage_and_no_transfer_on_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = tiny_train(&out, &["--iters", "2", "--profile"]);
    assert_ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for iteration in [1, 2] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("profile iteration {iteration}: ")))
            .unwrap_or_else(|| panic!("no profile line for iteration {iteration}:\n{stderr}"));
        let stages = [
            "data",
            "backbone",
            "rpn",
            "roi_heads",
            "backward",
            "optimizer",
        ];
        let mut rest = line;
        for stage in stages {
            let at = rest
                .find(&format!("{stage} "))
                .unwrap_or_else(|| panic!("stage {stage} missing or out of order: {line}"));
            rest = &rest[at..];
        }
        assert!(line.contains("; transfers 0 (0 B), host reads "), "{line}");
    }
}

/// A checkpoint written before the first logged iteration has no losses to plot yet: that is
/// not worth a warning (it used to print one per checkpoint, naming the dataset as the thing
/// without records).
#[test]
fn checkpoints_before_the_first_logged_iteration_do_not_warn_about_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let extra = ["--iters", "2", "--checkpoint-period", "1"];
    let result = tiny_train_logging(&out, "20", &extra);
    assert_ok(&result);
    assert!(out.join("model_0000001.safetensors").exists());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!stderr.contains("loss.png not updated"), "{stderr}");
}
