//! Pascal VOC and YOLO datasets built from real coco128 images (copied into a temporary folder
//! at test time) load into the COCO records of the same boxes; bad files are errors naming the
//! file and line.
mod common;
#[path = "common/layouts.rs"]
mod layouts;

use std::path::{Path, PathBuf};

use common::shared_data;
use datasets::coco::CocoDataset;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::formats::{read_voc, read_yolo};
use datasets::shapes::Split;
use layouts::{subset, voc_pixels, write_voc, write_yolo, yolo_names};
use serde_json::json;

/// Three coco128 images: 9 (crowd-free), 25 and 30; 9 has 8 boxes of 4 classes.
const IDS: [u64; 3] = [9, 25, 30];

fn coco128() -> Option<(CocoDataset, PathBuf)> {
    let root = shared_data()?.join("coco128");
    Some((
        CocoDataset::load(root.join("annotations.json")).unwrap(),
        root.join("images"),
    ))
}

fn assert_same_records(got: &CocoDataset, expected: &CocoDataset, tolerance: f64) {
    assert_eq!(got.images, expected.images);
    assert_eq!(got.categories, expected.categories);
    assert_eq!(got.annotations.len(), expected.annotations.len());
    for (g, e) in got.annotations.iter().zip(&expected.annotations) {
        let close = |a: f64, b: f64| (a - b).abs() <= tolerance * b.abs().max(1.0);
        assert!(
            (g.id, g.image_id, g.category_id, g.iscrowd)
                == (e.id, e.image_id, e.category_id, e.iscrowd)
                && g.bbox.iter().zip(&e.bbox).all(|(a, b)| close(*a, *b))
                && close(g.area, e.area),
            "{g:?} != {e:?}"
        );
    }
}

#[test]
fn voc_root_loads_as_the_coco_records_of_the_same_boxes() {
    let Some((coco, images)) = coco128() else {
        return;
    };
    let mut picked = subset(&coco, &IDS);
    // One object marked difficult: it must come back as a crowd region.
    picked.annotations[1].iscrowd = true;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    // Image 30 has no <size>: its size comes from the JPEG header.
    write_voc(&root, &picked, &images, &[("train", &IDS)], &[30]);
    let got = read_voc(std::slice::from_ref(&root), "train").unwrap();
    assert!(got.roots_without_split.is_empty());

    // The expected records, written as COCO JSON by a different route: VOC's inclusive
    // 1-based pixels [x1, y1, x2, y2] cover the continuous box [x1 - 1, x2] x [y1 - 1, y2],
    // so COCO [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1] (detectron2's conversion).
    let mut names: Vec<String> = picked
        .annotations
        .iter()
        .map(|a| {
            picked
                .categories
                .iter()
                .find(|c| c.id == a.category_id)
                .unwrap()
                .name
                // VOC names are single words: the writer puts `_` for spaces.
                .replace(' ', "_")
        })
        .collect();
    names.sort();
    names.dedup();
    let mut annotations = Vec::new();
    // VOC files list objects image by image, in split order.
    let in_split_order = IDS
        .iter()
        .flat_map(|id| picked.annotations.iter().filter(move |a| a.image_id == *id));
    for (n, a) in in_split_order.enumerate() {
        let [x1, y1, x2, y2] = voc_pixels(a.bbox).map(|v| v as f64);
        let name = &picked
            .categories
            .iter()
            .find(|c| c.id == a.category_id)
            .unwrap()
            .name
            .replace(' ', "_");
        let (w, h) = (x2 - x1 + 1.0, y2 - y1 + 1.0);
        annotations.push(json!({
            "id": n + 1,
            "image_id": IDS.iter().position(|i| *i == a.image_id).unwrap() + 1,
            "category_id": names.iter().position(|m| m == name).unwrap() + 1,
            "bbox": [x1 - 1.0, y1 - 1.0, w, h],
            "area": w * h,
            "iscrowd": a.iscrowd as u8,
        }));
    }
    let expected = json!({
        "images": picked.images.iter().enumerate().map(|(i, im)| json!({
            "id": i + 1,
            "file_name": root.join("JPEGImages").join(&im.file_name).to_string_lossy(),
            "width": im.width,
            "height": im.height,
        })).collect::<Vec<_>>(),
        "annotations": annotations,
        "categories": names.iter().enumerate().map(|(i, n)| json!({"id": i + 1, "name": n}))
            .collect::<Vec<_>>(),
    });
    let expected = CocoDataset::from_slice(expected.to_string().as_bytes(), "expected").unwrap();
    assert!(
        expected.annotations.len() > 10,
        "a real test: {}",
        expected.annotations.len()
    );
    // Integer pixel coordinates: exact.
    assert_same_records(&got.coco, &expected, 0.0);
}

#[test]
fn voc_roots_join_in_order_and_skip_roots_without_the_split() {
    let Some((coco, images)) = coco128() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("VOC2007"), dir.path().join("VOC2012"));
    write_voc(
        &a,
        &subset(&coco, &[9, 25]),
        &images,
        &[("trainval", &[25, 9]), ("test", &[9])],
        &[],
    );
    write_voc(
        &b,
        &subset(&coco, &[30]),
        &images,
        &[("trainval", &[30])],
        &[],
    );
    let roots = [a.clone(), b.clone()];
    let train = read_voc(&roots, "trainval").unwrap();
    let files: Vec<&str> = train
        .coco
        .images
        .iter()
        .map(|i| i.file_name.as_str())
        .collect();
    let expect = |root: &Path, name: &str| {
        root.join("JPEGImages")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        files,
        [
            expect(&a, "000000000025.jpg"),
            expect(&a, "000000000009.jpg"),
            expect(&b, "000000000030.jpg")
        ]
    );
    assert_eq!(
        train.coco.images.iter().map(|i| i.id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let test = read_voc(&roots, "test").unwrap();
    assert_eq!(test.coco.images.len(), 1);
    assert_eq!(test.roots_without_split, std::slice::from_ref(&b));
    // Same categories for both splits (names from every annotation file of the roots).
    assert_eq!(train.coco.categories, test.coco.categories);
    let err = read_voc(&roots, "val").unwrap_err().to_string();
    assert!(
        err.contains("no VOC root has ImageSets/Main/val.txt") && err.contains("test, trainval"),
        "{err}"
    );
}

#[test]
fn voc_uses_the_devkit_class_order_for_voc_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
    let xml = "<annotation><size><width>50</width><height>40</height></size><object><name>dog\
               </name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>\
               </object></annotation>";
    std::fs::write(root.join("Annotations/a.xml"), xml).unwrap();
    std::fs::write(root.join("ImageSets/Main/val.txt"), "a\n").unwrap();
    let got = read_voc(&[root], "val").unwrap().coco;
    assert_eq!(got.categories.len(), 20);
    assert_eq!(
        (got.categories[11].id, got.categories[11].name.as_str()),
        (12, "dog")
    );
    assert_eq!(got.annotations[0].category_id, 12);
    assert_eq!(got.annotations[0].bbox, [0.0, 1.0, 10.0, 19.0]);
}

#[test]
fn malformed_voc_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
    let bad = root.join("Annotations/b.xml");
    std::fs::write(
        &bad,
        "<annotation>\n  <object>\n    <name>dog</name>\n  </objet>\n</annotation>\n",
    )
    .unwrap();
    std::fs::write(root.join("ImageSets/Main/train.txt"), "b\n").unwrap();
    let err = read_voc(std::slice::from_ref(&root), "train")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}:4:", bad.display())), "{err}");
    assert!(err.contains("malformed XML"), "{err}");

    std::fs::write(
        &bad,
        "<annotation>\n<size><width>9</width><height>9</height></size>\n\
                          <object><name>dog</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin>\
                          <xmax>x</xmax><ymax>3</ymax></bndbox></object></annotation>",
    )
    .unwrap();
    let err = read_voc(std::slice::from_ref(&root), "train")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{}:4: <xmax> is `x`, expected a number", bad.display())
    );

    // A split entry without an annotation file: the list file and its line.
    std::fs::write(root.join("ImageSets/Main/train.txt"), "b\n\nmissing\n").unwrap();
    std::fs::write(
        &bad,
        "<annotation><size><width>5</width><height>5</height></size></annotation>",
    )
    .unwrap();
    let err = read_voc(std::slice::from_ref(&root), "train")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}:3: image `missing`",
            root.join("ImageSets/Main/train.txt").display()
        )),
        "{err}"
    );
}

#[test]
fn yolo_dataset_loads_as_the_coco_records_of_the_same_boxes() {
    let Some((coco, images)) = coco128() else {
        return;
    };
    let picked = subset(&coco, &IDS);
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_yolo(dir.path(), &picked, &images, &[9, 30], &[25]);
    let names = yolo_names(&picked);
    // The expected records: the original COCO boxes of each split (crowds left out, as the
    // YOLO files hold none), images in sorted path order, category = class index + 1.
    let expected_split = |ids: &[u64], split: &str| {
        let mut anns = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            for a in picked
                .annotations
                .iter()
                .filter(|a| a.image_id == *id && !a.iscrowd)
            {
                let class = picked
                    .categories
                    .iter()
                    .position(|c| c.id == a.category_id)
                    .unwrap();
                anns.push(json!({
                    "id": anns.len() + 1, "image_id": i + 1, "category_id": class + 1,
                    "bbox": a.bbox, "area": a.bbox[2] * a.bbox[3], "iscrowd": 0,
                }));
            }
        }
        let images: Vec<_> = ids.iter().enumerate().map(|(i, id)| {
            let im = picked.images.iter().find(|m| m.id == *id).unwrap();
            json!({
                "id": i + 1,
                "file_name": dir.path().join("images").join(split).join(&im.file_name).to_string_lossy(),
                "width": im.width, "height": im.height,
            })
        }).collect();
        let cats: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"id": i + 1, "name": n}))
            .collect();
        let text = json!({"images": images, "annotations": anns, "categories": cats}).to_string();
        CocoDataset::from_slice(text.as_bytes(), split).unwrap()
    };
    let train = read_yolo(&yaml, "train").unwrap();
    let val = read_yolo(&yaml, "val").unwrap();
    // Normalising and back costs a few ulps of a pixel coordinate (< 1e-12 px on 640 px
    // images); 1e-9 relative leaves room for that and still catches any half-box or
    // off-by-one mistake.
    assert_same_records(&train, &expected_split(&[9, 30], "train"), 1e-9);
    assert_same_records(&val, &expected_split(&[25], "val"), 1e-9);
    assert!(train.annotations.len() > 5);
}

#[test]
fn yolo_names_may_be_a_list_and_bad_lines_name_file_and_line() {
    let Some((coco, images)) = coco128() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_yolo(dir.path(), &subset(&coco, &[9]), &images, &[9], &[9]);
    let names = yolo_names(&coco);
    let list = format!(
        "train: images/train\nval: images/val\nnames: [{}]\n",
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(&yaml, list).unwrap();
    let got = read_yolo(&yaml, "train").unwrap();
    assert_eq!(got.categories.len(), 80);
    assert_eq!(got.categories[79].name, names[79]);

    let label = dir.path().join("labels/train/000000000009.txt");
    let text = std::fs::read_to_string(&label).unwrap();
    std::fs::write(&label, text.clone() + "3 0.5 0.5 0.2\n").unwrap();
    let err = read_yolo(&yaml, "train").unwrap_err().to_string();
    let line = text.lines().count() + 1;
    assert_eq!(
        err,
        format!("{}:{line}: 4 values, expected 5 (`class cx cy w h`) or a polygon `class x1 y1 x2 y2 x3 y3 ...`", label.display())
    );
    std::fs::write(&label, "85 0.5 0.5 0.2 0.2\n").unwrap();
    let err = read_yolo(&yaml, "train").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}:1: class 85 is not in `names`",
            label.display()
        )),
        "{err}"
    );
    std::fs::write(&label, "0 0.5 1.5 0.2 0.2\n").unwrap();
    let err = read_yolo(&yaml, "train").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}:1: `1.5` is not a number in [0, 1]",
            label.display()
        )),
        "{err}"
    );

    std::fs::write(&yaml, "train: images/train\nnames: [a, b\n").unwrap();
    let err = read_yolo(&yaml, "train").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:", yaml.display())) && err.contains("malformed YAML"),
        "{err}"
    );
}

#[test]
fn layouts_open_as_datasets_with_both_splits() {
    let Some((coco, images)) = coco128() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    write_voc(
        &root,
        &subset(&coco, &IDS),
        &images,
        &[("train", &[9, 25]), ("val", &[30])],
        &[],
    );
    let spec = DatasetSpec::from_annotations(std::slice::from_ref(&root), None).unwrap();
    let train = Dataset::open(&spec, Split::Train).unwrap();
    let val = Dataset::open(&spec, Split::Val).unwrap();
    assert_eq!((train.len(), val.len()), (2, 1));
    // The images decode, at the records' sizes.
    let image = val.load_image(0).unwrap();
    assert_eq!((image.width, image.height), (640, 428));

    let yaml = write_yolo(
        &dir.path().join("yolo"),
        &subset(&coco, &IDS),
        &images,
        &[9, 25],
        &[30],
    );
    let spec = DatasetSpec::from_annotations(std::slice::from_ref(&yaml), None).unwrap();
    let val = Dataset::open(&spec, Split::Val).unwrap();
    assert_eq!(val.load_image(0).unwrap().height, 428);

    // --images is refused where the layout names its own images, required for COCO JSON.
    let err = DatasetSpec::from_annotations(std::slice::from_ref(&yaml), Some(Path::new("x")))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("--images x is not used with a YOLO data.yaml"),
        "{err}"
    );
    let err = DatasetSpec::from_annotations(&[dir.path().join("a.json")], None).unwrap_err();
    assert!(
        err.to_string().contains("need --images DIR")
            || err.to_string().contains("needs --images DIR"),
        "{err}"
    );
    let err = DatasetSpec::from_annotations(&[root.clone(), yaml], None).unwrap_err();
    assert!(err.to_string().starts_with("cannot join"), "{err}");
}
