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

use crate::atomic::write_atomically;
use crate::output::detection::Detection;
use datasets::coco::CategoryMap;

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
    pub fn new(image_id: u64, detection: &Detection, labels: &CategoryMap) -> Self {
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
mod tests;
