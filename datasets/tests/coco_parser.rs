//! The COCO annotation parser on the real subsets in `../shared/data` and on small hand-written
//! files for the error paths.
mod common;
use common::shared_data;

use datasets::coco::{CocoDataset, CocoError, TargetOptions, BACKGROUND};

#[test]
fn coco128_counts_crowds_and_empty_images() {
    let Some(root) = shared_data() else { return };
    let coco = CocoDataset::load(root.join("coco128/annotations.json")).unwrap();
    assert_eq!(coco.images.len(), 128);
    assert_eq!(coco.annotations.len(), 939);
    assert_eq!(coco.categories.len(), 80);
    assert_eq!(coco.annotations.iter().filter(|a| a.iscrowd).count(), 10);

    let per_image = coco.annotations_per_image();
    let index = coco.image_index();
    assert!(per_image[index[&250]].is_empty());
    assert!(per_image[index[&508]].is_empty());
    let gray = &coco.images[index[&86]];
    assert_eq!(gray.file_name, "000000000086.jpg");

    let map = coco.category_map();
    assert_eq!(map.num_categories(), 80);
    assert_eq!(map.label(1), Some(1));
    assert_eq!(map.label(90), Some(80));
    assert_eq!(map.name(80), Some("toothbrush"));
    assert_eq!(map.label(12), None); // one of COCO's unused ids

    let targets = coco.training_targets(&map, TargetOptions { filter_empty: true });
    assert_eq!(targets.crowd_excluded, 10);
    assert_eq!(targets.small_dropped, 0);
    assert_eq!(targets.empty_images_filtered, 2);
    assert_eq!(targets.images.len(), 126);
    let boxes: usize = targets.images.iter().map(|t| t.labels.len()).sum();
    assert_eq!(boxes, 929); // the 929 non-crowd boxes of the data README
    assert!(targets
        .images
        .iter()
        .all(|t| t.image_id != 250 && t.image_id != 508));
    assert!(targets
        .images
        .iter()
        .flat_map(|t| &t.labels)
        .all(|&l| l != BACKGROUND && l <= 80));

    let kept = coco.training_targets(
        &map,
        TargetOptions {
            filter_empty: false,
        },
    );
    assert_eq!(kept.images.len(), 128);
    assert_eq!(kept.empty_images_filtered, 0);
}

#[test]
fn coco128_first_box_is_converted_to_clipped_xyxy() {
    let Some(root) = shared_data() else { return };
    let coco = CocoDataset::load(root.join("coco128/annotations.json")).unwrap();
    let first = &coco.annotations[0];
    let image = &coco.images[coco.image_index()[&first.image_id]];
    let targets = coco.training_targets(&coco.category_map(), TargetOptions::default());
    let t = targets
        .images
        .iter()
        .find(|t| t.image_id == first.image_id)
        .unwrap();
    let [x, y, w, h] = first.bbox;
    let expected = [
        x.max(0.0),
        y.max(0.0),
        (x + w).min(image.width as f64),
        (y + h).min(image.height as f64),
    ];
    let got = t.boxes_xyxy[0];
    for k in 0..4 {
        assert!(
            (got[k] as f64 - expected[k]).abs() < 1e-4,
            "{got:?} vs {expected:?}"
        );
    }
}

#[test]
fn coco_val80_counts() {
    let Some(root) = shared_data() else { return };
    let coco = CocoDataset::load(root.join("coco_val80/annotations.json")).unwrap();
    assert_eq!(coco.images.len(), 80);
    assert_eq!(coco.annotations.len(), 815);
    assert_eq!(coco.annotations.iter().filter(|a| a.iscrowd).count(), 11);
    let used: std::collections::BTreeSet<_> =
        coco.annotations.iter().map(|a| a.category_id).collect();
    assert_eq!(used.len(), 80);
    // `area` is the mask area, not w*h: the evaluator's ranges depend on keeping it.
    assert!(coco
        .annotations
        .iter()
        .any(|a| (a.area - a.bbox[2] * a.bbox[3]).abs() > 1.0));
}

const GOOD: &str = r#"{
  "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 8, "license": 3}],
  "annotations": [
    {"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5.5,
     "iscrowd": 0, "segmentation": [[1, 2, 3, 4, 5, 6]]},
    {"id": 8, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 8], "area": 80,
     "iscrowd": 1, "segmentation": {"counts": [0, 80], "size": [8, 10]}}
  ],
  "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}],
  "info": {"year": 2017}, "licenses": []
}"#;

#[test]
fn accepts_polygons_rle_and_extra_fields() {
    let coco = CocoDataset::from_slice(GOOD.as_bytes(), "good.json").unwrap();
    assert_eq!(coco.annotations.len(), 2);
    assert_eq!(coco.annotations[0].bbox, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(coco.annotations[0].area, 5.5);
    assert!(coco.annotations[1].iscrowd);
}

#[test]
fn malformed_json_reports_file_line_and_column() {
    let bad = GOOD.replace(r#""width": 10,"#, r#""width": 10,,"#);
    // The second comma of ",," is the unexpected character: find its line and column (1-based).
    let line_text = bad.lines().position(|l| l.contains(",,")).unwrap();
    let expected = (
        line_text + 1,
        bad.lines().nth(line_text).unwrap().find(",,").unwrap() + 2,
    );
    assert_eq!(expected, (2, 58));
    let err = CocoDataset::from_slice(bad.as_bytes(), "bad.json").unwrap_err();
    match &err {
        CocoError::Json { line, column, .. } => assert_eq!((*line, *column), expected),
        other => panic!("expected a JSON error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("bad.json") && message.contains("line 2, column 58"),
        "{message}"
    );
}

#[test]
fn unknown_category_names_file_annotation_and_id() {
    let bad = GOOD.replace(
        r#""id": 8, "image_id": 1, "category_id": 3"#,
        r#""id": 8, "image_id": 1, "category_id": 91"#,
    );
    let err = CocoDataset::from_slice(bad.as_bytes(), "cats.json").unwrap_err();
    assert!(matches!(
        err,
        CocoError::UnknownCategory {
            annotation_id: 8,
            category_id: 91,
            ..
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("cats.json") && message.contains("annotation 8") && message.contains("91")
    );
}

#[test]
fn unknown_image_names_file_annotation_and_id() {
    let bad = GOOD.replace(r#""id": 7, "image_id": 1"#, r#""id": 7, "image_id": 42"#);
    let err = CocoDataset::from_slice(bad.as_bytes(), "imgs.json").unwrap_err();
    assert!(matches!(
        err,
        CocoError::UnknownImage {
            annotation_id: 7,
            image_id: 42,
            ..
        }
    ));
    assert!(err.to_string().contains("imgs.json"));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = CocoDataset::load("/nonexistent/instances.json").unwrap_err();
    assert!(matches!(err, CocoError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/instances.json"));
}

#[test]
fn tiny_boxes_after_clipping_are_dropped_and_counted() {
    let json = GOOD.replace("[1, 2, 3, 4]", "[9.5, 2, 3, 4]"); // clipped to width 0.5
    let coco = CocoDataset::from_slice(json.as_bytes(), "tiny.json").unwrap();
    let t = coco.training_targets(
        &coco.category_map(),
        TargetOptions {
            filter_empty: false,
        },
    );
    assert_eq!(t.small_dropped, 1);
    assert_eq!(t.crowd_excluded, 1);
    assert_eq!(t.images.len(), 1);
    assert!(t.images[0].labels.is_empty());
    let filtered = coco.training_targets(&coco.category_map(), TargetOptions::default());
    assert_eq!(filtered.images.len(), 0);
    assert_eq!(filtered.empty_images_filtered, 1);
}
