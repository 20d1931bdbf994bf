use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

/// The `--precision` of a parsed command line (train, eval or predict).
fn parsed(args: &[&str]) -> Result<Precision, clap::Error> {
    let cli = Cli::try_parse_from(["detect"].iter().chain(args))?;
    Ok(match cli.command {
        Command::Train(a) => a.precision,
        Command::Eval(a) => a.precision,
        Command::Predict(a) => a.precision,
        other => unreachable!("not a model command: {other:?}"),
    })
}

#[test]
fn precision_parses_on_train_eval_and_predict_with_tf32_by_default() {
    let train = ["train", "--dataset", "shapes"];
    let eval = ["eval", "--weights", "m.safetensors", "--dataset", "shapes"];
    let predict = ["predict", "a.jpg"];
    for command in [&train[..], &eval[..], &predict[..]] {
        assert_eq!(parsed(command).unwrap(), Precision::Tf32, "{command:?}");
        let values = [
            ("fp32", Precision::Fp32),
            ("tf32", Precision::Tf32),
            ("bf16", Precision::Bf16),
        ];
        for (value, expected) in values {
            let args: Vec<&str> = command
                .iter()
                .copied()
                .chain(["--precision", value])
                .collect();
            assert_eq!(parsed(&args).unwrap(), expected, "{args:?}");
        }
        let args: Vec<&str> = command
            .iter()
            .copied()
            .chain(["--precision", "fp16"])
            .collect();
        let err = parsed(&args).unwrap_err().to_string();
        assert!(
            err.contains("fp16") && err.contains("fp32, tf32, bf16"),
            "{err}"
        );
    }
}

#[test]
fn precision_is_refused_with_a_results_file() {
    let args = [
        "eval",
        "--annotations",
        "a.json",
        "--results",
        "r.json",
        "--precision",
        "fp32",
    ];
    let err = parsed(&args).unwrap_err().to_string();
    assert!(
        err.contains("--precision") && err.contains("--results"),
        "{err}"
    );
}

#[test]
fn apply_sets_the_tf32_switch_of_cuda_convolutions() {
    let _turn = SWITCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    Precision::Fp32.apply();
    assert!(!backbones::conv::allow_tf32());
    Precision::Tf32.apply();
    assert!(backbones::conv::allow_tf32());
    Precision::Fp32.apply();
    Precision::Bf16.apply();
    assert!(
        backbones::conv::allow_tf32(),
        "PyTorch's default outside autocast"
    );
}

#[test]
fn only_bf16_autocasts_the_model() {
    assert_eq!(Precision::Bf16.autocast(), Some(candle_core::DType::BF16));
    assert_eq!(Precision::Fp32.autocast(), None);
    assert_eq!(Precision::Tf32.autocast(), None);
}

#[test]
fn precision_is_spelled_the_same_in_config_json_and_on_the_command_line() {
    for p in [Precision::Fp32, Precision::Tf32, Precision::Bf16] {
        assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        let on_cli = clap::ValueEnum::to_possible_value(&p).unwrap();
        assert_eq!(on_cli.get_name(), p.name());
    }
}
