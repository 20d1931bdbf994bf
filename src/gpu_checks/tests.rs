//! The checks' plumbing, on the CPU alone (no GPU here): CPU against CPU must agree exactly,
//! the measures must see a planted difference, and a missing CUDA says so.
use std::path::Path;

use candle_core::{Device, Tensor};

use super::compare::{max_abs_diff, max_rel_diff, Check};
use super::*;
/// The TF32 switch is process-wide: tests that touch it take turns.
use crate::model::precision::SWITCH_LOCK as TF32;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn limits_pass_at_the_limit_and_fail_above_or_on_nan() {
    assert!(Check::within("a", "max|Δ|", 1e-5, 1e-5).passed);
    assert!(!Check::within("a", "max|Δ|", 1.1e-5, 1e-5).passed);
    assert!(!Check::within("a", "max|Δ|", f64::NAN, 1e-5).passed);
    let c = Check::within("conv\tx", "max|Δ|", 2e-6, 1e-5);
    assert_eq!(c.tsv(), "conv x\tPASS\tmax|Δ| 2.00e-6\t<= 1e-5");
    assert_eq!(
        Check::exact("n", false, "1 vs 2".into()).tsv(),
        "n\tFAIL\t1 vs 2\tidentical"
    );
}

#[test]
fn measures_see_a_planted_difference() {
    let a = Tensor::new(&[1.0f32, -4.0, 2.0], &Device::Cpu).unwrap();
    let b = Tensor::new(&[1.0f32, -4.0, 2.5], &Device::Cpu).unwrap();
    assert_eq!(max_abs_diff(&b, &a).unwrap(), 0.5);
    assert_eq!(max_rel_diff(&b, &a).unwrap(), 0.5 / 4.0);
    let nan = Tensor::new(&[1.0f32, f32::NAN, 2.0], &Device::Cpu).unwrap();
    assert_eq!(max_abs_diff(&nan, &a).unwrap(), f64::INFINITY);
    assert!(max_abs_diff(&a, &Tensor::new(&[1.0f32], &Device::Cpu).unwrap()).is_err());
}

/// CPU against itself: every op check runs (fixtures found, ops succeed) and agrees exactly.
#[test]
fn op_checks_run_and_agree_cpu_against_cpu() {
    let checks: Vec<Check> = [
        ops::upload_round_trip(&Device::Cpu),
        ops::conv(&Device::Cpu, false),
        ops::nms(root(), &Device::Cpu),
        ops::nms_random(&Device::Cpu),
        ops::nonzero_top_k_random(&Device::Cpu),
        ops::roi_align(root(), &Device::Cpu),
        ops::roi_align_random(&Device::Cpu),
        ops::multi_scale(root(), &Device::Cpu),
        ops::boxes(root(), &Device::Cpu),
    ]
    .concat();
    // 3 uploads; 6 conv shapes x 3; 10 + 4 NMS fixture cases, 2 random; 1 nonzero + 2 top_k;
    // 2 x (8 RoIAlign cases + 1 random); 2 MultiScale; 1 box row.
    assert_eq!(
        checks.len(),
        3 + 18 + 14 + 2 + 3 + 16 + 2 + 2 + 1,
        "{checks:#?}"
    );
    for c in &checks {
        assert!(c.passed && c.error == 0.0, "{c:?}");
    }
}

#[test]
fn model_checks_run_and_agree_cpu_against_cpu() {
    let checks: Vec<Check> = [
        backbone::fixture_backbone(root(), &Device::Cpu),
        model::detections(root(), &Device::Cpu),
        model::training_step(root(), &Device::Cpu),
    ]
    .concat();
    for c in &checks {
        assert!(c.passed && c.error == 0.0, "{c:?}");
    }
    // 2 inputs x 9 levels; 2 images x 3 rows; 4 losses + 1 gradient row.
    assert_eq!(checks.len(), 18 + 6 + 5, "{checks:#?}");
}

#[test]
fn a_missing_fixture_is_a_failed_check_naming_the_file() {
    let checks = ops::nms(Path::new("/nonexistent"), &Device::Cpu);
    assert_eq!(checks.len(), 1);
    assert!(!checks[0].passed);
    assert!(
        checks[0]
            .measured
            .contains("/nonexistent/heads/tests/fixtures/ops/nms.json"),
        "{:?}",
        checks[0]
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_cpu_only_build_says_it_has_no_cuda() {
    let e = cuda_device().unwrap_err();
    assert!(e.contains("built without CUDA support"), "{e}");
}

#[test]
fn doctor_self_check_runs_cpu_against_cpu() {
    let _turn = TF32.lock().unwrap_or_else(|e| e.into_inner());
    let checks = quick(&Device::Cpu);
    // 2 conv shapes x 3, 2 NMS, 2 RoIAlign.
    assert_eq!(checks.len(), 10, "{checks:#?}");
    assert!(
        checks.iter().all(|c| c.passed && c.error == 0.0),
        "{checks:#?}"
    );
}

#[test]
fn parity_checks_turn_tf32_off_and_restore_it() {
    let _turn = TF32.lock().unwrap_or_else(|e| e.into_inner());
    backbones::conv::set_allow_tf32(true);
    {
        let _g = Fp32::on();
        assert!(!backbones::conv::allow_tf32());
    }
    assert!(backbones::conv::allow_tf32());
}

/// The bf16 backbone check CPU against CPU agrees exactly; and its limit's basis: on the CPU
/// the bf16 levels of that network (random weights, new each run) differ from its f32 levels
/// by 0.8-1.2e-2 of each level's largest value (measured 2026-12-01; printed below, held
/// here to 2e-2), so two bf16 runs differing by more than `BF16_BACKBONE_LIMIT` (3e-2) would
/// be more than rounding.
#[test]
fn bf16_backbone_check_runs_and_bf16_levels_stay_near_f32() {
    let checks = backbone::resnext50_bf16(&Device::Cpu);
    assert_eq!(checks.len(), 9, "{checks:#?}");
    for c in &checks {
        assert!(c.passed && c.error == 0.0, "{c:?}");
    }
    let (model, _, x) = backbone::resnext50_models(&Device::Cpu).unwrap();
    let levels = |autocast| backbone::levels_under(&model, &x, &Device::Cpu, autocast).unwrap();
    let (full, mixed) = (levels(None), levels(Some(candle_core::DType::BF16)));
    let errors: Vec<f64> = mixed
        .iter()
        .zip(&full)
        .map(|(m, f)| max_rel_diff(m, f).unwrap())
        .collect();
    println!("bf16 vs f32, C2..C5 P2..P6: {errors:.2?}");
    for e in &errors {
        assert!(
            *e > 0.0,
            "bf16 equal to f32: autocast did nothing ({errors:?})"
        );
        assert!(*e <= 2e-2, "bf16 far from f32: {errors:?}");
    }
}
