use super::*;

fn category(id: u64, name: &str) -> Category {
    Category {
        id,
        name: name.to_string(),
        supercategory: String::new(),
    }
}

#[test]
fn sparse_ids_map_to_contiguous_labels_in_id_order() {
    let map = CategoryMap::from_categories(&[
        category(13, "stop sign"),
        category(1, "person"),
        category(11, "fire hydrant"),
    ]);
    assert_eq!(map.num_categories(), 3);
    assert_eq!(map.label(1), Some(1));
    assert_eq!(map.label(11), Some(2));
    assert_eq!(map.label(13), Some(3));
    assert_eq!(map.label(12), None);
    assert_eq!(map.category_id(3), Some(13));
    assert_eq!(map.name(2), Some("fire hydrant"));
    assert_eq!(map.category_id(BACKGROUND), None);
    assert_eq!(map.category_id(4), None);
}

#[test]
fn round_trips_through_json() {
    let map = CategoryMap::from_categories(&[category(90, "toothbrush"), category(2, "bicycle")]);
    let json = serde_json::to_string(&map).unwrap();
    assert_eq!(
        json,
        r#"{"categories":[{"id":2,"name":"bicycle"},{"id":90,"name":"toothbrush"}]}"#
    );
    let back: CategoryMap = serde_json::from_str(&json).unwrap();
    assert_eq!(back, map);
    assert_eq!(back.label(90), Some(2));
}

#[test]
fn torchvision_coco_label_is_category_id() {
    let labels = CategoryMap::coco_torchvision();
    assert_eq!(labels.category(1).name, "person");
    assert_eq!(
        labels.category(90),
        CategoryEntry {
            id: 90,
            name: "toothbrush".into()
        }
    );
    assert_eq!(labels.category(12).name, "class 12", "unused COCO id");
}

#[test]
fn contiguous_labels_start_at_one() {
    let cats = [
        CategoryEntry {
            id: 7,
            name: "a".into(),
        },
        CategoryEntry {
            id: 9,
            name: "b".into(),
        },
    ];
    let labels = CategoryMap::from_entries(cats.to_vec(), LabelScheme::Contiguous);
    assert_eq!(labels.category(2), cats[1]);
    assert_eq!(labels.category(0).name, "class 0");
    assert_eq!(labels.category(3).id, 3);
    let named = CategoryMap::from_class_names(&["circle".into(), "square".into()]);
    assert_eq!(
        named.category(2),
        CategoryEntry {
            id: 2,
            name: "square".into()
        }
    );
}

#[test]
fn category_map_labels_follow_ascending_ids() {
    let coco = |id: u64, name: &str| Category {
        id,
        name: name.into(),
        supercategory: String::new(),
    };
    let map = CategoryMap::from_categories(&[coco(90, "toothbrush"), coco(3, "car")]);
    let labels = map;
    assert_eq!(
        labels.category(1),
        CategoryEntry {
            id: 3,
            name: "car".into()
        }
    );
    assert_eq!(
        labels.category(2),
        CategoryEntry {
            id: 90,
            name: "toothbrush".into()
        }
    );
}

#[test]
fn identity_map_round_trips_with_its_scheme() {
    let map = CategoryMap::coco_torchvision();
    let json = serde_json::to_string(&map).unwrap();
    assert!(json.starts_with(r#"{"labels":"identity","categories":[{"id":1,"name":"person"}"#));
    let back: CategoryMap = serde_json::from_str(&json).unwrap();
    assert_eq!(back, map);
    assert_eq!(back.scheme(), LabelScheme::Identity);
    assert_eq!(back.label(90), Some(90));
    assert_eq!(back.category_id(13), Some(13));
    assert_eq!(back.name(12), None, "12 is an unused COCO id");
}
