//! End-to-end tests of `detect convert` on the checkpoints of `tests/fixtures/convert/gen.py`.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/convert")
        .join(name)
}

fn detect(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detect"))
        .arg("convert")
        .args(args)
        .output()
        .expect("the detect binary runs")
}

/// Converts `input` into a fresh folder and returns the tensors written and stdout.
fn convert(input: &str) -> (std::collections::HashMap<String, Tensor>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output_path = dir.path().join("out.safetensors");
    let output = detect(&[&fixture(input), &output_path]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "convert {input} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["out.safetensors"],
        "only the output is left behind (no temporary)"
    );
    (
        candle_core::safetensors::load(&output_path, &Device::Cpu).unwrap(),
        stdout,
    )
}

/// Exact equality: same names, dtypes, shapes and bytes as torch wrote them.
fn assert_equals_expected(converted: &std::collections::HashMap<String, Tensor>) {
    let expected =
        candle_core::safetensors::load(fixture("expected.safetensors"), &Device::Cpu).unwrap();
    let mut got_names: Vec<_> = converted.keys().collect();
    let mut expected_names: Vec<_> = expected.keys().collect();
    got_names.sort();
    expected_names.sort();
    assert_eq!(got_names, expected_names);
    for (name, want) in &expected {
        let got = &converted[name];
        assert_eq!(got.dtype(), want.dtype(), "{name}");
        assert_eq!(got.dims(), want.dims(), "{name}");
        // Compare as f64 (exact for every dtype here: f32, f16, i64 small values).
        let flat = |t: &Tensor| {
            t.flatten_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        assert_eq!(flat(got), flat(want), "{name}");
    }
    assert_eq!(converted["1.num_batches_tracked"].dtype(), DType::I64);
    assert_eq!(
        converted["1.num_batches_tracked"]
            .to_scalar::<i64>()
            .unwrap(),
        5
    );
}

#[test]
fn converts_top_level_state_dict_with_int64_buffer_and_transposed_tensor() {
    let (converted, stdout) = convert("plain.pth");
    assert_equals_expected(&converted);
    assert!(
        stdout.contains("converted 9 tensors, skipped 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped `head.counts_int32`: unsupported storage type IntStorage\n"),
        "{stdout}"
    );
}

#[test]
fn finds_state_dict_nested_under_model_key() {
    let (converted, stdout) = convert("nested.pth");
    assert_equals_expected(&converted);
    assert!(stdout.contains("state dict under `model`"), "{stdout}");
}

#[test]
fn prefers_the_model_key_over_an_equally_large_dict_and_a_stray_tensor() {
    let (converted, stdout) = convert("model_and_ema.pth");
    assert_equals_expected(&converted);
    assert!(stdout.contains("state dict under `model`"), "{stdout}");
}

#[test]
fn ambiguous_state_dicts_are_an_error_listing_them() {
    let dir = tempfile::tempdir().unwrap();
    let output = detect(&[
        &fixture("ambiguous.pth"),
        &dir.path().join("out.safetensors"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ambiguous.pth") && stderr.contains("`student`, `teacher`"),
        "{stderr}"
    );
}

#[test]
fn legacy_checkpoint_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let output_path = dir.path().join("out.safetensors");
    let output = detect(&[&fixture("legacy.pth"), &output_path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("legacy.pth"), "{stderr}");
    assert!(stderr.contains("legacy (pre-1.6, non-zip)"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!output_path.exists());
}

#[test]
fn missing_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pth");
    let output = detect(&[&missing, &dir.path().join("out.safetensors")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nope.pth"), "{stderr}");
}
