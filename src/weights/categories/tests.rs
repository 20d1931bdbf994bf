use super::*;

fn coco80() -> Vec<Category> {
    datasets::coco::COCO_CATEGORIES
        .iter()
        .map(|&(id, name)| Category {
            id,
            name: name.into(),
            supercategory: String::new(),
        })
        .collect()
}

#[test]
fn eighty_sparse_ids_map_contiguously_not_label_to_id() {
    let map = labels_for(81, Some(&coco80()), None, Path::new("w.pth")).unwrap();
    // Label 12 is the 12th COCO category, id 13 "stop sign" (id 12 is unused in COCO).
    assert_eq!(map.category_id(12), Some(13));
    assert_eq!(map.name(12), Some("stop sign"));
    assert_eq!(map.category_id(80), Some(90));
}

#[test]
fn other_class_counts_without_categories_are_refused() {
    let err = labels_for(81, None, None, Path::new("w.pth")).unwrap_err();
    assert!(err.to_string().contains("--categories FILE"), "{err}");
}

#[test]
fn ninety_one_outputs_are_coco_ids_and_a_wrong_count_is_refused() {
    let map = labels_for(91, None, None, Path::new("w.pth")).unwrap();
    assert_eq!(map.name(13), Some("stop sign"));
    let with_names = labels_for(91, Some(&coco80()), None, Path::new("w.pth")).unwrap();
    assert_eq!(
        with_names.category_id(13),
        Some(13),
        "91 outputs: label = id"
    );
    let err = labels_for(5, Some(&coco80()), None, Path::new("w.pth")).unwrap_err();
    assert!(err.to_string().contains("80 categories"), "{err}");
}

#[test]
fn categories_file_may_be_a_list_or_an_annotation_file() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("c.json");
    std::fs::write(&list, r#"[{"id": 7, "name": "b"}, {"id": 3, "name": "a"}]"#).unwrap();
    assert_eq!(read_categories(&list).unwrap().len(), 2);
    let ann = dir.path().join("a.json");
    std::fs::write(
        &ann,
        r#"{"images": [], "categories": [{"id": 1, "name": "x"}]}"#,
    )
    .unwrap();
    assert_eq!(read_categories(&ann).unwrap()[0].name, "x");
    std::fs::write(&ann, r#"[{"id": 1, "name": "x"}, {"id": 1, "name": "y"}]"#).unwrap();
    let err = read_categories(&ann).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
}
