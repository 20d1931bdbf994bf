use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

fn options(args: &[&str]) -> anyhow::Result<TrainOptions> {
    let cli = Cli::try_parse_from(["detect", "train"].iter().chain(args))?;
    let Command::Train(train) = cli.command else {
        unreachable!("parsed a train command")
    };
    TrainOptions::from_args(&train)
}

#[test]
fn min_size_takes_one_value_or_a_list() {
    assert_eq!(options(&["--dataset", "shapes"]).unwrap().min_size, None);
    let one = options(&["--dataset", "shapes", "--min-size", "96"]).unwrap();
    assert_eq!(one.min_size, Some(vec![96]));
    let many = options(&["--dataset", "shapes", "--min-size", "640,672,704"]).unwrap();
    assert_eq!(many.min_size, Some(vec![640, 672, 704]));
    let err = options(&["--dataset", "shapes", "--min-size", "0"]).unwrap_err();
    assert!(err.to_string().contains("must be in 32..=8192"), "{err}");
}

#[test]
fn schedule_3x_trains_multi_scale_by_default() {
    let three = options(&["--dataset", "shapes", "--schedule", "3x"]).unwrap();
    assert_eq!(
        three.min_size,
        Some(vec![640, 672, 704, 736, 768, 800]),
        "detectron2's 3x INPUT.MIN_SIZE_TRAIN"
    );
    let one = options(&["--dataset", "shapes", "--schedule", "1x"]).unwrap();
    assert_eq!(one.min_size, None);
    let chosen = options(&[
        "--dataset",
        "shapes",
        "--schedule",
        "3x",
        "--min-size",
        "800",
    ]);
    assert_eq!(chosen.unwrap().min_size, Some(vec![800]));
}

#[test]
fn the_batch_must_split_evenly_over_the_workers() {
    let cli = Cli::try_parse_from([
        "detect",
        "train",
        "--dataset",
        "shapes",
        "--batch-size",
        "4",
    ]);
    let Command::Train(train) = cli.unwrap().command else {
        unreachable!("parsed a train command")
    };
    let worker = |world_size| {
        Some(WorkerEnv {
            world_size,
            rank: 0,
            local_rank: 0,
            local_world_size: None,
            master: "127.0.0.1:29500".into(),
        })
    };
    let err = TrainOptions::from_args_in(&train, worker(3), Backend::Tcp).unwrap_err();
    assert!(
        err.to_string()
            .contains("--batch-size 4 does not split evenly over 3 workers"),
        "{err}"
    );
    let two = TrainOptions::from_args_in(&train, worker(2), Backend::Tcp).unwrap();
    assert_eq!((two.batch_size, two.dist.world_size()), (4, 2));
}

#[test]
fn skipping_bad_images_is_refused_data_parallel() {
    let args = [
        "detect",
        "train",
        "--dataset",
        "shapes",
        "--gpus",
        "2",
        "--skip-bad-images",
    ];
    let Command::Train(train) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!("parsed a train command")
    };
    let err = TrainOptions::from_args_in(&train, None, Backend::Tcp).unwrap_err();
    assert!(
        err.to_string()
            .contains("--skip-bad-images is not supported in data-parallel"),
        "{err}"
    );
}
