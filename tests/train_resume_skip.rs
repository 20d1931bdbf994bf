//! `--resume` mid-epoch skips the epoch's earlier batches without decoding them: the images of
//! the skipped batch are made unreadable before resuming, and the resumed run still trains
//! (decoding them would fail without `--skip-bad-images`) with the uninterrupted run's loss.
mod bad_input_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bad_input_support::{detect_with_deadline, text, tiny_coco_train_args, write_coco};
use datasets::dataset::Dataset;
use datasets::loader::{DataLoader, LoaderConfig, Mode};
use datasets::transforms::TransformConfig;

const DEADLINE: Duration = Duration::from_secs(240);

fn total_losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
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

#[test]
fn resume_does_not_decode_the_skipped_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_coco(dir.path(), 4);
    let full = dir.path().join("full");
    let run = |out: &Path, extra: &[&str]| {
        let mut args = tiny_coco_train_args(&annotations, &images, out.to_str().unwrap());
        args.extend([
            "--batch-size",
            "2",
            "--iters",
            "2",
            "--checkpoint-period",
            "1",
        ]);
        args.extend(["--log-period", "1"]);
        args.extend_from_slice(extra);
        detect_with_deadline(&args, dir.path(), DEADLINE)
    };
    let result = run(&full, &[]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let expected = total_losses(&full);
    assert_eq!(expected.len(), 2);

    // Interrupted after iteration 1: checkpoint 1 and its log line.
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let ckpt = "model_0000001.safetensors";
    std::fs::copy(full.join(ckpt), cut.join(ckpt)).unwrap();
    std::fs::write(cut.join("last_checkpoint"), ckpt).unwrap();
    let head = std::fs::read_to_string(full.join("metrics.jsonl")).unwrap();
    std::fs::write(
        cut.join("metrics.jsonl"),
        format!("{}\n", head.lines().next().unwrap()),
    )
    .unwrap();

    // Epoch 0's first batch, as the trainer's loader plans it (batch 2, seed 0, defaults):
    // the planning is the loader's, not what this test checks.
    let dataset = Dataset::from_files(Path::new(&annotations), Path::new(&images)).unwrap();
    let map = dataset.coco.category_map();
    let loader = DataLoader::new(
        Arc::new(dataset),
        &map,
        TransformConfig::default(),
        LoaderConfig {
            batch_size: 2,
            seed: 0,
            ..LoaderConfig::default()
        },
        Mode::Train,
    );
    let first_batch = &loader.epoch_image_ids(0)[0];
    assert_eq!(first_batch.len(), 2);
    for id in first_batch {
        let name = format!("img{}.png", id - 1);
        std::fs::write(Path::new(&images).join(name), b"unreadable now").unwrap();
    }

    let result = run(&cut, &["--resume"]);
    assert!(
        result.status.success(),
        "the resumed run decoded a skipped image: {}",
        text(&result.stderr)
    );
    let resumed = total_losses(&cut);
    assert_eq!(resumed.len(), 2);
    // Same ops on the same data in the same order on CPU: equal to the last bit.
    assert_eq!(resumed[1], expected[1]);
}
