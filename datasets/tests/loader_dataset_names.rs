//! Dataset names: `coco` under $DETECT_DATASETS (default ./datasets), `shapes`, files.
//! One test per process touches the environment, so this file holds a single test.
use std::path::PathBuf;

use datasets::dataset::{Dataset, DatasetError, DatasetSpec, DATASETS_ENV};
use datasets::shapes::Split;

#[test]
fn dataset_names_resolve_and_missing_coco_says_where_it_looked() {
    let root = std::env::temp_dir().join(format!("detect-no-datasets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    // Named `coco` with the root from the environment.
    std::env::set_var(DATASETS_ENV, &root);
    let spec = DatasetSpec::from_name("coco").unwrap();
    let err = Dataset::open(&spec, Split::Train).unwrap_err();
    let msg = err.to_string();
    let looked = root.join("coco/annotations/instances_train2017.json");
    assert!(matches!(err, DatasetError::CocoNotFound { .. }));
    assert!(msg.contains(&looked.display().to_string()), "{msg}");
    assert!(
        msg.contains("DETECT_DATASETS") && msg.contains("from $DETECT_DATASETS"),
        "{msg}"
    );

    // The default root when the variable is unset.
    std::env::remove_var(DATASETS_ENV);
    let msg = Dataset::open(&spec, Split::Val).unwrap_err().to_string();
    let default = PathBuf::from("./datasets/coco/annotations/instances_val2017.json");
    assert!(msg.contains(&default.display().to_string()), "{msg}");
    assert!(
        msg.contains("DETECT_DATASETS is not set") && msg.contains("export DETECT_DATASETS="),
        "{msg}"
    );

    // A found annotation file but no image folder names the folder.
    std::fs::create_dir_all(root.join("coco/annotations")).unwrap();
    std::fs::write(
        root.join("coco/annotations/instances_val2017.json"),
        "{\"images\": []}",
    )
    .unwrap();
    let spec = DatasetSpec::Coco {
        root: Some(root.clone()),
    };
    let msg = Dataset::open(&spec, Split::Val).unwrap_err().to_string();
    assert!(
        msg.contains(&root.join("coco/val2017").display().to_string()),
        "{msg}"
    );
    std::fs::create_dir_all(root.join("coco/val2017")).unwrap();
    assert!(Dataset::open(&spec, Split::Val).unwrap().is_empty());

    // `shapes` needs no files; unknown names list the choices.
    let shapes = Dataset::open(&DatasetSpec::from_name("shapes").unwrap(), Split::Val).unwrap();
    assert_eq!(shapes.len(), 100);
    assert_eq!(shapes.load_image(0).unwrap().width, 160);
    let msg = DatasetSpec::from_name("imagenet").unwrap_err().to_string();
    assert!(
        msg.contains("imagenet") && msg.contains("coco") && msg.contains("shapes"),
        "{msg}"
    );
}
