use super::*;

fn paths(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

#[test]
fn numeric_stems_are_coco_image_ids() {
    let ids = ImageIds::assign(&paths(&["data/000000005001.jpg", "x/42.png"]));
    assert_eq!(ids.ids, [5001, 42]);
    assert!(ids.notes.is_empty());
}

#[test]
fn other_names_get_running_ids_after_the_largest_numeric_one() {
    let ids = ImageIds::assign(&paths(&[
        "cat.jpg", "7.jpg", "dog.jpg", "a/7.jpg", "1e3.jpg",
    ]));
    assert_eq!(ids.ids, [8, 7, 9, 10, 11]);
    assert_eq!(ids.notes.len(), 4);
    assert!(
        ids.notes[0].contains("`cat.jpg` has no numeric name: image_id 8"),
        "{:?}",
        ids.notes
    );
    assert!(
        ids.notes[2].contains("`a/7.jpg` repeats"),
        "{:?}",
        ids.notes
    );
    assert_eq!(ImageIds::assign(&paths(&["cat.jpg"])).ids, [1]);
}

#[test]
fn result_has_xywh_box_and_dataset_category_id() {
    let labels = CategoryMap::coco_torchvision();
    let detection = Detection {
        box_xyxy: [10.5, 20.0, 110.5, 70.0],
        score: 0.875,
        label: 88,
    };
    let result = CocoResult::new(5001, &detection, &labels);
    assert_eq!(result.bbox, [10.5, 20.0, 100.0, 50.0]);
    assert_eq!(
        (result.category_id, result.category_name.as_str()),
        (88, "teddy bear")
    );
    let contiguous = CategoryMap::from_categories(&[datasets::coco::Category {
        id: 17,
        name: "cat".into(),
        supercategory: String::new(),
    }]);
    assert_eq!(
        CocoResult::new(
            1,
            &Detection {
                label: 1,
                ..detection
            },
            &contiguous
        )
        .category_id,
        17
    );
}

#[test]
fn written_file_is_a_coco_results_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dets.json");
    let labels = CategoryMap::coco_torchvision();
    let detection = Detection {
        box_xyxy: [1.0, 2.0, 4.0, 6.0],
        score: 0.5,
        label: 1,
    };
    write_coco_results(&path, &[CocoResult::new(3, &detection, &labels)]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"image_id": 3, "category_id": 1, "category_name": "person",
                            "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}])
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
}
