//! A Pascal VOC dataset (one root or several, as VOC07+12) read into COCO records.
//!
//! A root holds `Annotations/<id>.xml`, `ImageSets/Main/<split>.txt` (one image id per line)
//! and `JPEGImages/<id>.jpg`. A split is read from every root that has its list file, in the
//! order the roots are given; roots without it are reported in [`VocSplit::roots_without_split`]
//! (VOC2012 has no public `test` list, so `VOC2007 + VOC2012` with split `test` is VOC07's test).
//!
//! Conversion to COCO records:
//! - **Coordinates.** VOC boxes are 1-based pixel indices with both ends inclusive: a box
//!   covering pixels 1..=3 is 3 pixels wide. Our boxes are continuous with the origin at the
//!   image's top-left corner, so that box spans `[0, 3]`: `x1 = xmin - 1`, `x2 = xmax`
//!   (likewise in y), COCO `[x1, y1, xmax - xmin + 1, ymax - ymin + 1]`. This is detectron2's
//!   conversion (`pascal_voc.py` subtracts 1 from xmin and ymin and keeps xmax, ymax), and
//!   it makes a continuous IoU equal the devkit's `+1` pixel IoU on the original integers.
//! - **difficult** objects become `iscrowd = 1`: left out of training targets, "ignore" for
//!   COCO AP, and "difficult" for [`crate::eval::VocEvaluator`].
//! - **Categories.** The 20 VOC classes in the devkit's order (ids 1..20) when every object
//!   name in the roots' `Annotations/` is one of them; otherwise every name found there, sorted
//!   (ids 1..K). All annotation files of the roots are read for this, so every split of the same
//!   roots gets the same ids.
//! - **Images.** Ids 1..N in split order; `file_name` is the image's path (root joined with
//!   `JPEGImages/<id>.jpg`, or `<filename>` from the XML when that file does not exist); width
//!   and height from `<size>`, or from the image's header when `<size>` is absent or zero.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::voc_xml::{parse_voc_xml, VocAnnotation};
use super::{image_size, FormatError};
use crate::coco::{Annotation, Category, CocoDataset, ImageInfo};

/// The 20 Pascal VOC classes in the devkit's order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// A VOC split as COCO records.
#[derive(Debug, Clone)]
pub struct VocSplit {
    pub coco: CocoDataset,
    /// Roots that have no `ImageSets/Main/<split>.txt` and so gave no image.
    pub roots_without_split: Vec<PathBuf>,
}

/// VOC's inclusive 1-based `[xmin, ymin, xmax, ymax]` → COCO's continuous `[x, y, w, h]`.
pub fn voc_box_to_xywh(bndbox: [f64; 4]) -> [f64; 4] {
    let [xmin, ymin, xmax, ymax] = bndbox;
    [xmin - 1.0, ymin - 1.0, xmax - xmin + 1.0, ymax - ymin + 1.0]
}

/// True when `path` looks like a VOC root (it has an `Annotations/` folder).
pub fn is_voc_root(path: &Path) -> bool {
    path.join("Annotations").is_dir()
}

/// Reads split `split` (e.g. `train`, `val`, `trainval`, `test`) of the joined `roots`.
pub fn read_voc(roots: &[PathBuf], split: &str) -> Result<VocSplit, FormatError> {
    let mut parsed: Vec<HashMap<String, (PathBuf, VocAnnotation)>> = Vec::new();
    let mut names = BTreeSet::new();
    for root in roots {
        let all = read_annotation_folder(root)?;
        for (_, ann) in all.values() {
            names.extend(ann.objects.iter().map(|o| o.name.clone()));
        }
        parsed.push(all);
    }
    let class_names: Vec<String> = if names.iter().all(|n| VOC_CLASSES.contains(&n.as_str())) {
        VOC_CLASSES.iter().map(|s| s.to_string()).collect()
    } else {
        names.into_iter().collect()
    };
    let category_of: HashMap<&str, u64> = class_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u64 + 1))
        .collect();
    let mut coco = CocoDataset {
        images: Vec::new(),
        annotations: Vec::new(),
        categories: class_names
            .iter()
            .zip(1..)
            .map(|(name, id)| Category {
                id,
                name: name.clone(),
                supercategory: String::new(),
            })
            .collect(),
    };
    let mut roots_without_split = Vec::new();
    for (root, annotations) in roots.iter().zip(&parsed) {
        let list = root.join("ImageSets/Main").join(format!("{split}.txt"));
        if !list.is_file() {
            roots_without_split.push(root.clone());
            continue;
        }
        let text = std::fs::read_to_string(&list).map_err(|e| FormatError::io(&list, e))?;
        for (line_index, line) in text.lines().enumerate() {
            // Main/<split>.txt holds one id per line (the per-class lists add a flag after it).
            let Some(id) = line.split_whitespace().next() else {
                continue;
            };
            let Some((xml_path, ann)) = annotations.get(id) else {
                return Err(FormatError::SplitList {
                    path: list.clone(),
                    line: line_index + 1,
                    message: format!(
                        "image `{id}` has no annotation file {}",
                        root.join("Annotations").join(format!("{id}.xml")).display()
                    ),
                });
            };
            add_image(&mut coco, &category_of, root, id, xml_path, ann)?;
        }
    }
    if roots_without_split.len() == roots.len() {
        return Err(missing_split(roots, split));
    }
    Ok(VocSplit {
        coco,
        roots_without_split,
    })
}

/// Every `Annotations/*.xml` of `root`, parsed, by file stem.
fn read_annotation_folder(
    root: &Path,
) -> Result<HashMap<String, (PathBuf, VocAnnotation)>, FormatError> {
    let folder = root.join("Annotations");
    let entries = std::fs::read_dir(&folder).map_err(|e| FormatError::io(&folder, e))?;
    let mut out = HashMap::new();
    for entry in entries {
        let path = entry.map_err(|e| FormatError::io(&folder, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| FormatError::io(&path, e))?;
        let ann = parse_voc_xml(&text, &path)?;
        out.insert(stem.to_string(), (path, ann));
    }
    Ok(out)
}

/// Appends image `id` of `root` and its objects to `coco`.
fn add_image(
    coco: &mut CocoDataset,
    category_of: &HashMap<&str, u64>,
    root: &Path,
    id: &str,
    xml_path: &Path,
    ann: &VocAnnotation,
) -> Result<(), FormatError> {
    let images = root.join("JPEGImages");
    let mut image_path = images.join(format!("{id}.jpg"));
    if let Some(name) = &ann.filename {
        if !image_path.exists() && images.join(name).exists() {
            image_path = images.join(name);
        }
    }
    let (width, height) = match ann.size {
        Some(size) => size,
        None => image_size(&image_path).map_err(|e| FormatError::Voc {
            path: xml_path.to_path_buf(),
            line: 1,
            message: format!("no <size>, and the image's own size is unknown: {e}"),
        })?,
    };
    let image_id = coco.images.len() as u64 + 1;
    coco.images.push(ImageInfo {
        id: image_id,
        file_name: image_path.to_string_lossy().into_owned(),
        width,
        height,
    });
    for object in &ann.objects {
        // Every name is in the map: it was built from all annotation files.
        let Some(&category_id) = category_of.get(object.name.as_str()) else {
            continue;
        };
        let bbox = voc_box_to_xywh(object.bndbox);
        coco.annotations.push(Annotation {
            id: coco.annotations.len() as u64 + 1,
            image_id,
            category_id,
            bbox,
            area: bbox[2] * bbox[3],
            iscrowd: object.difficult,
        });
    }
    Ok(())
}

fn missing_split(roots: &[PathBuf], split: &str) -> FormatError {
    let mut found = BTreeSet::new();
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(root.join("ImageSets/Main")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Per-class lists are `<class>_<split>.txt`; the split lists have no underscore.
                if let Some(stem) = name.strip_suffix(".txt") {
                    if !stem.contains('_') {
                        found.insert(stem.to_string());
                    }
                }
            }
        }
    }
    FormatError::MissingSplit {
        split: split.to_string(),
        roots: roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        found: if found.is_empty() {
            "none".into()
        } else {
            found.into_iter().collect::<Vec<_>>().join(", ")
        },
    }
}
