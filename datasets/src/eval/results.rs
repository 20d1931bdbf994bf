//! Detections in COCO category ids, and COCO results files
//! (`[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`).
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::coco::{CategoryId, CategoryMap, ImageId};

/// One detection as COCO results files hold it. Other fields (`segmentation`, ...) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub image_id: ImageId,
    pub category_id: CategoryId,
    /// `[x, y, width, height]` in original image pixels.
    pub bbox: [f64; 4],
    pub score: f64,
}

impl Detection {
    /// A detection from a model's output: an xyxy box and a contiguous label (1..K), mapped back
    /// to its COCO category id through `map`. None for the background or an unknown label.
    pub fn from_xyxy(
        image_id: ImageId,
        box_xyxy: [f32; 4],
        score: f32,
        label: u32,
        map: &CategoryMap,
    ) -> Option<Self> {
        let [x1, y1, x2, y2] = box_xyxy.map(f64::from);
        Some(Detection {
            image_id,
            category_id: map.category_id(label)?,
            bbox: [x1, y1, x2 - x1, y2 - y1],
            score: f64::from(score),
        })
    }
}

/// Reads a COCO results file. Image and category ids are checked when the detections are fed
/// to [`super::CocoEvaluator::add_detections`].
pub fn load_results(path: impl AsRef<Path>) -> Result<Vec<Detection>, EvalError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|error| EvalError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_results(&bytes, &path.display().to_string())
}

/// Parses a COCO results JSON array held in memory; `source_name` names it in errors.
pub fn parse_results(bytes: &[u8], source_name: &str) -> Result<Vec<Detection>, EvalError> {
    let detections: Vec<Detection> = serde_json::from_slice(bytes).map_err(|error| {
        let message = error.to_string();
        EvalError::Json {
            source_name: source_name.to_string(),
            line: error.line(),
            column: error.column(),
            // serde_json's message ends with " at line L column C": keep only the cause.
            message: match message.rsplit_once(" at line ") {
                Some((cause, _)) => cause.to_string(),
                None => message,
            },
        }
    })?;
    for (index, d) in detections.iter().enumerate() {
        if !d.score.is_finite() || d.bbox.iter().any(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                source_name: source_name.to_string(),
                index,
                bbox: d.bbox,
                score: d.score,
            });
        }
    }
    Ok(detections)
}
