use super::*;
use crate::coco::{Annotation, Category, ImageInfo};

fn dataset(boxes: &[([f64; 4], bool)]) -> CocoDataset {
    CocoDataset {
        images: vec![ImageInfo {
            id: 7,
            file_name: "a.jpg".into(),
            width: 100,
            height: 100,
        }],
        annotations: boxes
            .iter()
            .enumerate()
            .map(|(i, (bbox, difficult))| Annotation {
                id: i as u64 + 1,
                image_id: 7,
                category_id: 1,
                bbox: *bbox,
                area: bbox[2] * bbox[3],
                iscrowd: *difficult,
            })
            .collect(),
        categories: vec![Category {
            id: 1,
            name: "cat".into(),
            supercategory: String::new(),
        }],
    }
}

fn det(bbox: [f64; 4], score: f64) -> Detection {
    Detection {
        image_id: 7,
        category_id: 1,
        bbox,
        score,
    }
}

#[test]
fn perfect_detections_score_one() {
    let mut e = VocEvaluator::new(&dataset(&[([0., 0., 10., 10.], false)]));
    e.add_detections(&[det([0., 0., 10., 10.], 0.9)]).unwrap();
    let m = e.evaluate();
    assert_eq!((m.map07, m.map12), (1.0, 1.0));
}

#[test]
fn missed_boxes_score_zero_and_no_positives_has_no_ap() {
    let m = VocEvaluator::new(&dataset(&[([0., 0., 10., 10.], false)])).evaluate();
    assert_eq!(m.classes[0].ap07, Some(0.0));
    assert_eq!(m.classes[0].ap12, Some(0.0));
    // Only a difficult box: npos = 0, the class has no AP and the mean has nothing to average.
    let mut e = VocEvaluator::new(&dataset(&[([0., 0., 10., 10.], true)]));
    e.add_detections(&[det([0., 0., 10., 10.], 0.9)]).unwrap();
    let m = e.evaluate();
    assert_eq!((m.classes[0].positives, m.classes[0].ap07), (0, None));
}

#[test]
fn eleven_point_thresholds_are_exact_decimals() {
    // Recall 3/10 == 0.3 as a double: it counts for t = 0.3 (numpy's arange would give
    // 0.30000000000000004 and miss it). Precision 1 up to recall 0.3, none beyond:
    // t = 0, 0.1, 0.2, 0.3 → 4/11.
    let ap = ap_11_point(&[0.1, 0.2, 0.3], &[1.0, 1.0, 1.0]);
    assert_eq!(ap, 4.0 / 11.0);
}

#[test]
fn area_ap_uses_the_precision_envelope() {
    // Points (0.5, 0.5), (1, 1): the envelope lifts the first to 1 → AP 1.
    assert_eq!(ap_area(&[0.5, 1.0], &[0.5, 1.0]), 1.0);
    // (0.5, 1), (0.5, 0.5): half the recall at precision 1 → 0.5.
    assert_eq!(ap_area(&[0.5, 0.5], &[1.0, 0.5]), 0.5);
}

#[test]
fn unknown_ids_are_errors() {
    let mut e = VocEvaluator::new(&dataset(&[]));
    let mut d = det([0., 0., 1., 1.], 0.5);
    d.image_id = 8;
    let err = e.add_detections(&[d]).unwrap_err().to_string();
    assert!(err.contains("image id 8"), "{err}");
}
