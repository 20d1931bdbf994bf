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
