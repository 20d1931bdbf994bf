//! COCO results files: `[{image_id, category_id, category_name, bbox, score}]`, the format
//! `pycocotools`' `COCO.loadRes` and `detect eval --results` read (`category_name` is extra,
//! for people; evaluators ignore it).
//!
//! `image_id` is the image file's stem when it is a number (`000000005001.jpg` -> 5001, COCO's
//! own naming), so results on COCO images evaluate directly against COCO annotations. Other
//! names get a running id, stable for a given list of images: after the largest numeric stem,
//! in the order given. A repeated numeric stem (`a/1.jpg`, `b/1.jpg`) is treated the same way.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomically;
use crate::labels::LabelMap;
use crate::predict_output::Detection;

/// One detection in COCO results format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    pub image_id: u64,
    /// The dataset's category id (COCO: 1..=90), not the model's contiguous label.
    pub category_id: u64,
    pub category_name: String,
    /// `[x, y, width, height]` in the original image's pixels.
    pub bbox: [f32; 4],
    pub score: f32,
}

impl CocoResult {
    /// `detection` (xyxy in original pixels) as a COCO result of image `image_id`.
    pub fn new(image_id: u64, detection: &Detection, labels: &LabelMap) -> Self {
        let [x1, y1, x2, y2] = detection.box_xyxy;
        let category = labels.category(detection.label);
        Self {
            image_id,
            category_id: category.id,
            category_name: category.name,
            bbox: [x1, y1, x2 - x1, y2 - y1],
            score: detection.score,
        }
    }
}

/// The `image_id` of each image, by position in the list given to [`ImageIds::assign`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageIds {
    pub ids: Vec<u64>,
    /// One line per image whose id is not its file stem, saying which id it got.
    pub notes: Vec<String>,
}

impl ImageIds {
    /// Assigns ids to `images` (see the module doc for the rule).
    pub fn assign(images: &[PathBuf]) -> Self {
        let numeric: Vec<Option<u64>> = images.iter().map(|path| numeric_stem(path)).collect();
        let mut next = numeric
            .iter()
            .flatten()
            .max()
            .map_or(1, |max| max.saturating_add(1));
        let mut used = HashSet::new();
        let mut ids = Vec::with_capacity(images.len());
        let mut notes = Vec::new();
        for (path, stem_id) in images.iter().zip(&numeric) {
            match stem_id {
                Some(id) if used.insert(*id) => ids.push(*id),
                _ => {
                    let reason = if stem_id.is_some() {
                        "repeats another image's numeric name"
                    } else {
                        "has no numeric name"
                    };
                    notes.push(format!(
                        "`{}` {reason}: image_id {next} in the results",
                        path.display()
                    ));
                    used.insert(next);
                    ids.push(next);
                    next = next.saturating_add(1);
                }
            }
        }
        Self { ids, notes }
    }
}

/// `000000005001.jpg` -> 5001; `None` unless the stem is all ASCII digits and fits in u64.
fn numeric_stem(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Writes `results` as a JSON list to `path`, atomically (temporary file, then rename).
pub fn write_coco_results(path: &Path, results: &[CocoResult]) -> anyhow::Result<()> {
    let json = serde_json::to_vec(results).context("cannot serialise the results")?;
    write_atomically(path, |temporary| {
        std::fs::write(temporary, &json)
            .with_context(|| format!("cannot write the results file `{}`", path.display()))
    })
}

#[cfg(test)]
mod tests {
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
        let labels = LabelMap::coco_torchvision();
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
        let contiguous = LabelMap::contiguous(&[crate::labels::Category {
            id: 17,
            name: "cat".into(),
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
        let labels = LabelMap::coco_torchvision();
        let detection = Detection {
            box_xyxy: [1.0, 2.0, 4.0, 6.0],
            score: 0.5,
            label: 1,
        };
        write_coco_results(&path, &[CocoResult::new(3, &detection, &labels)]).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
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
}
