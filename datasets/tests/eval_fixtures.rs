//! The evaluator against pycocotools at 1e-9 on full-precision fixtures.
//!
//! Fixtures: `tests/fixtures/eval/`, made by
//! `/work/venv/bin/python datasets/tests/fixtures/eval/gen.py` (pycocotools 2.0.11). The tolerance
//! 1e-9 leaves room only for summation order (pycocotools' numpy mean sums pairwise), which moves
//! means of ~10^5 terms in [0, 1] by ~1e-15.
mod common;
use common::shared_data;
use std::path::{Path, PathBuf};

use datasets::coco::CocoDataset;
use datasets::eval::{load_results, CocoEvaluator, CocoMetrics, EvalError, STAT_NAMES};

const TOLERANCE: f64 = 1e-9;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eval")
        .join(name)
}

fn assert_matches_reference(metrics: &CocoMetrics, reference: &Path) {
    let text = std::fs::read_to_string(reference).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, ours) in STAT_NAMES.iter().zip(metrics.stats) {
        let theirs = reference["stats"][name].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= TOLERANCE,
            "{name}: ours {ours} vs pycocotools {theirs}"
        );
    }
    let per_category = reference["per_category"].as_object().unwrap();
    assert_eq!(per_category.len(), metrics.per_category.len());
    for c in &metrics.per_category {
        let theirs = per_category[&c.name].as_f64().unwrap();
        assert!(
            (c.ap - theirs).abs() <= TOLERANCE,
            "{}: ours {} vs pycocotools {theirs}",
            c.name,
            c.ap
        );
    }
    assert_eq!(metrics.summary(), reference["summary"].as_str().unwrap());
}

fn evaluate_case(case: &str) -> CocoMetrics {
    let gt = CocoDataset::load(fixture(&format!("{case}_gt.json"))).unwrap();
    let mut evaluator = CocoEvaluator::new(&gt);
    evaluator
        .add_results_file(fixture(&format!("{case}_dt.json")))
        .unwrap();
    evaluator.evaluate()
}

#[test]
fn coco_val80_matches_pycocotools_to_1e_9() {
    let Some(root) = shared_data() else { return };
    let gt = CocoDataset::load(root.join("coco_val80/annotations.json")).unwrap();
    let mut evaluator = CocoEvaluator::new(&gt);
    evaluator
        .add_results_file(root.join("coco_val80/eval_reference/detections_synthetic.json"))
        .unwrap();
    assert_matches_reference(&evaluator.evaluate(), &fixture("val80_pycocotools.json"));
}

/// Crowds hit by detections, images without gt, a category without gt and one without
/// detections, 150 detections on an image, tied scores, IoUs exactly at thresholds, tiny and
/// huge boxes, gt area unlike w*h, a gt with id 0, images absent from the results.
#[test]
fn edge_case_fixture_matches_pycocotools() {
    let metrics = evaluate_case("edge");
    assert_matches_reference(&metrics, &fixture("edge_pycocotools.json"));
    // The category without ground truth is undefined (-1), not zero.
    let empty = metrics.per_category.iter().find(|c| c.id == 7).unwrap();
    assert_eq!(empty.ap, -1.0);
}

#[test]
fn dense_fixture_matches_pycocotools() {
    assert_matches_reference(&evaluate_case("dense"), &fixture("dense_pycocotools.json"));
}

#[test]
fn feeding_image_by_image_equals_the_whole_file_on_any_thread_count() {
    let gt = CocoDataset::load(fixture("edge_gt.json")).unwrap();
    let detections = load_results(fixture("edge_dt.json")).unwrap();
    let mut by_image = CocoEvaluator::new(&gt);
    for image in &gt.images {
        let mine: Vec<_> = detections
            .iter()
            .filter(|d| d.image_id == image.id)
            .copied()
            .collect();
        by_image.add_detections(&mine).unwrap();
    }
    assert_eq!(by_image.num_detections(), detections.len());
    let whole = evaluate_case("edge");
    assert_eq!(by_image.evaluate_with_threads(1), whole);
    assert_eq!(by_image.evaluate_with_threads(3), whole);
}

#[test]
fn no_detections_give_zero_ap_where_gt_exists() {
    let gt = CocoDataset::load(fixture("dense_gt.json")).unwrap();
    let metrics = CocoEvaluator::new(&gt).evaluate();
    assert_eq!(metrics.stats[0], 0.0);
    assert_eq!(metrics.stats[8], 0.0);
}

fn results_error(json: &str) -> EvalError {
    let gt = CocoDataset::load(fixture("edge_gt.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("detect_eval_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{:x}.json",
        json.len() * 31 + json.bytes().map(usize::from).sum::<usize>()
    ));
    std::fs::write(&path, json).unwrap();
    let err = CocoEvaluator::new(&gt).add_results_file(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    err
}

#[test]
fn unknown_image_in_results_is_an_error() {
    let err = results_error(
        r#"[{"image_id": 1000, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
            {"image_id": 999999, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]"#,
    );
    assert!(
        matches!(
            err,
            EvalError::UnknownImage {
                index: 1,
                image_id: 999999,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_category_in_results_is_an_error_naming_it() {
    let err = results_error(
        r#"[{"image_id": 1000, "category_id": 55, "bbox": [1, 2, 3, 4], "score": 0.5}]"#,
    );
    assert!(err.to_string().contains("category id 55"), "{err}");
    assert!(matches!(
        err,
        EvalError::UnknownCategory {
            index: 0,
            category_id: 55,
            ..
        }
    ));
}

#[test]
fn malformed_results_report_line_and_column() {
    let err = results_error(
        "[\n{\"image_id\": 1000, \"category_id\": 1, \"bbox\": [1, 2, 3], \"score\": 0.5}\n]",
    );
    // `bbox` has 3 numbers: serde stops at the closing bracket, line 2 column 52.
    let col = "{\"image_id\": 1000, \"category_id\": 1, \"bbox\": [1, 2, 3]".len();
    match err {
        EvalError::Json { line, column, .. } => assert_eq!((line, column), (2, col)),
        other => panic!("expected a JSON error, got {other}"),
    }
}
