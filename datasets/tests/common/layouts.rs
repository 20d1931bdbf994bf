//! Builds tiny Pascal VOC and YOLO datasets at test time from real COCO images and their boxes
//! (images are copied into a temporary folder, never committed). Shared by the datasets tests
//! and the CLI tests (`#[path]`-included there).
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use datasets::coco::{Annotation, CocoDataset};

/// The images `ids` of `coco` (in that order) with their annotations.
pub fn subset(coco: &CocoDataset, ids: &[u64]) -> CocoDataset {
    let images = ids
        .iter()
        .map(|id| coco.images.iter().find(|i| i.id == *id).unwrap().clone())
        .collect();
    let annotations = coco
        .annotations
        .iter()
        .filter(|a| ids.contains(&a.image_id))
        .cloned()
        .collect();
    CocoDataset {
        images,
        annotations,
        categories: coco.categories.clone(),
    }
}

/// A COCO box as VOC writes it: the 1-based inclusive pixels it touches,
/// `[floor(x) + 1, floor(y) + 1, ceil(x + w), ceil(y + h)]`.
pub fn voc_pixels(bbox: [f64; 4]) -> [i64; 4] {
    let [x, y, w, h] = bbox;
    [
        x.floor() as i64 + 1,
        y.floor() as i64 + 1,
        (x + w).ceil() as i64,
        (y + h).ceil() as i64,
    ]
}

fn category_name(coco: &CocoDataset, ann: &Annotation) -> String {
    coco.categories
        .iter()
        .find(|c| c.id == ann.category_id)
        .unwrap()
        .name
        .replace(' ', "_")
}

/// Writes a VOC root: `JPEGImages/<stem>.jpg` copied from `images`, `Annotations/<stem>.xml`
/// (crowd regions written as difficult; `<size>` left out for the image ids in `no_size`),
/// and one `ImageSets/Main/<split>.txt` per `(split, ids)`.
pub fn write_voc(
    root: &Path,
    coco: &CocoDataset,
    images: &Path,
    splits: &[(&str, &[u64])],
    no_size: &[u64],
) {
    for dir in ["Annotations", "JPEGImages", "ImageSets/Main"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for image in &coco.images {
        let stem = image.file_name.trim_end_matches(".jpg");
        std::fs::copy(
            images.join(&image.file_name),
            root.join("JPEGImages").join(&image.file_name),
        )
        .unwrap();
        let mut xml = format!(
            "<annotation>\n  <folder>VOC</folder>\n  <filename>{}</filename>\n",
            image.file_name
        );
        if !no_size.contains(&image.id) {
            xml += &format!(
                "  <size><width>{}</width><height>{}</height><depth>3</depth></size>\n",
                image.width, image.height
            );
        }
        for ann in coco.annotations.iter().filter(|a| a.image_id == image.id) {
            let [x1, y1, x2, y2] = voc_pixels(ann.bbox);
            xml += &format!(
                "  <object>\n    <name>{}</name>\n    <pose>Unspecified</pose>\n    \
                 <truncated>0</truncated>\n    <difficult>{}</difficult>\n    <bndbox>\
                 <xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n  \
                 </object>\n",
                category_name(coco, ann),
                ann.iscrowd as u8
            );
        }
        xml += "</annotation>\n";
        std::fs::write(root.join("Annotations").join(format!("{stem}.xml")), xml).unwrap();
    }
    for (split, ids) in splits {
        let text: String = ids
            .iter()
            .map(|id| {
                let name = &coco.images.iter().find(|i| i.id == *id).unwrap().file_name;
                format!("{}\n", name.trim_end_matches(".jpg"))
            })
            .collect();
        std::fs::write(root.join(format!("ImageSets/Main/{split}.txt")), text).unwrap();
    }
}

/// The class names of `coco` in id order, as YOLO's `names` (index = class).
pub fn yolo_names(coco: &CocoDataset) -> Vec<String> {
    let mut cats = coco.categories.clone();
    cats.sort_by_key(|c| c.id);
    cats.into_iter().map(|c| c.name).collect()
}

/// Writes a YOLO dataset under `dir`: `images/{train,val}/` copied from `images`,
/// `labels/{train,val}/<stem>.txt` with `class cx cy w h` normalised (class = position of the
/// category in id order; crowd regions left out) and `data.yaml` with `names` as an
/// `{id: name}` map. Returns the data.yaml path.
pub fn write_yolo(
    dir: &Path,
    coco: &CocoDataset,
    images: &Path,
    train: &[u64],
    val: &[u64],
) -> PathBuf {
    let names = yolo_names(coco);
    let mut cats = coco.categories.clone();
    cats.sort_by_key(|c| c.id);
    for (split, ids) in [("train", train), ("val", val)] {
        std::fs::create_dir_all(dir.join("images").join(split)).unwrap();
        std::fs::create_dir_all(dir.join("labels").join(split)).unwrap();
        for id in ids {
            let image = coco.images.iter().find(|i| i.id == *id).unwrap();
            std::fs::copy(
                images.join(&image.file_name),
                dir.join("images").join(split).join(&image.file_name),
            )
            .unwrap();
            let (w, h) = (image.width as f64, image.height as f64);
            let mut text = String::new();
            for ann in coco
                .annotations
                .iter()
                .filter(|a| a.image_id == *id && !a.iscrowd)
            {
                let class = cats.iter().position(|c| c.id == ann.category_id).unwrap();
                let [x, y, bw, bh] = ann.bbox;
                text += &format!(
                    "{class} {} {} {} {}\n",
                    (x + bw / 2.0) / w,
                    (y + bh / 2.0) / h,
                    bw / w,
                    bh / h
                );
            }
            let stem = image.file_name.trim_end_matches(".jpg");
            std::fs::write(
                dir.join("labels").join(split).join(format!("{stem}.txt")),
                text,
            )
            .unwrap();
        }
    }
    let mut yaml = String::from("path: .\ntrain: images/train\nval: images/val\nnames:\n");
    for (i, name) in names.iter().enumerate() {
        yaml += &format!("  {i}: {name}\n");
    }
    let path = dir.join("data.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}
