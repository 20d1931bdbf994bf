//! The evaluator against pycocotools on the shared coco_val80 reference
//! (`../shared/data/coco_val80/eval_reference/`): real COCO ground truth, synthetic detections.
mod common;
use common::shared_data;

use datasets::coco::CocoDataset;
use datasets::eval::{CocoEvaluator, STAT_NAMES};

fn evaluate_val80(root: &std::path::Path) -> datasets::eval::CocoMetrics {
    let gt = CocoDataset::load(root.join("coco_val80/annotations.json")).unwrap();
    let mut evaluator = CocoEvaluator::new(&gt);
    let n = evaluator
        .add_results_file(root.join("coco_val80/eval_reference/detections_synthetic.json"))
        .unwrap();
    assert_eq!(n, 1059);
    evaluator.evaluate()
}

/// The shared reference stores 6 decimals, so it can only pin our numbers to 5e-7; the
/// full-precision comparison (1e-9) is in `eval_fixtures.rs` on the same inputs.
#[test]
fn coco_val80_matches_the_shared_pycocotools_reference() {
    let Some(root) = shared_data() else { return };
    let metrics = evaluate_val80(&root);
    let text =
        std::fs::read_to_string(root.join("coco_val80/eval_reference/pycocotools_bbox.json"))
            .unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stats = reference["stats_list"].as_array().unwrap();
    for (k, (ours, theirs)) in metrics.stats.iter().zip(stats).enumerate() {
        let theirs = theirs.as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 5e-7,
            "{}: ours {ours} vs pycocotools {theirs}",
            STAT_NAMES[k]
        );
    }
    let per_category = reference["per_category_ap"].as_object().unwrap();
    assert_eq!(per_category.len(), metrics.per_category.len());
    for c in &metrics.per_category {
        let theirs = per_category[&c.name].as_f64().unwrap();
        assert!(
            (c.ap - theirs).abs() <= 5e-7,
            "{}: ours {} vs pycocotools {theirs}",
            c.name,
            c.ap
        );
    }
    // The printed summary equals pycocotools' byte for byte.
    assert_eq!(
        metrics.summary(),
        format!(
            "{}\n",
            reference["summarize_output"]
                .as_str()
                .unwrap()
                .trim_end_matches('\n')
        )
    );
}
