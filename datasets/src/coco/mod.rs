//! COCO "instances" annotation files: typed records, validation, the category map and the
//! training targets derived from them. One parser, shared by the loader and the evaluator.
//!
//! Data flow: [`CocoDataset::load`] reads and validates a file → [`CategoryMap::from_categories`]
//! maps COCO's sparse category ids (1..90 with gaps) to contiguous labels 1..K →
//! [`CocoDataset::training_targets`] turns annotations into clipped xyxy boxes and labels.
//! The evaluator reads the same [`CocoDataset`] directly (crowd regions and all).
mod category_map;
mod error;
mod targets;

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

pub use category_map::{
    CategoryEntry, CategoryMap, LabelScheme, BACKGROUND, COCO_CATEGORIES,
    COCO_TORCHVISION_NUM_CLASSES,
};
pub use error::CocoError;
pub use targets::{
    bbox_xywh_to_xyxy_clipped, ImageTargets, TargetOptions, TrainingTargets, MIN_BOX_SIDE,
};

/// A COCO image id (the `id` of an `images` record).
pub type ImageId = u64;
/// A COCO category id (sparse: 1..90 with gaps in COCO 2017).
pub type CategoryId = u64;

/// One `images` record. Other standard fields (`license`, `coco_url`, ...) are accepted and
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: ImageId,
    pub file_name: String,
    /// Width in pixels, as the JSON says (the loader checks it against the decoded image).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// One `annotations` record. `segmentation` (polygons or RLE), `keypoints` and any other field
/// are accepted and skipped without being stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: u64,
    pub image_id: ImageId,
    pub category_id: CategoryId,
    /// `[x, y, width, height]` in absolute pixels, origin at the image's top-left corner.
    pub bbox: [f64; 4],
    /// Area of the segmentation mask (not `w*h`); COCO evaluation's small/medium/large ranges
    /// use it. When a file omits it we use `w*h` (pycocotools would refuse such a file).
    #[serde(default = "missing_area")]
    pub area: f64,
    /// `iscrowd=1` marks a crowd region: excluded from training targets, "ignore" in evaluation.
    /// Absent means 0, as in pycocotools. Accepts 0/1 or true/false.
    #[serde(default, deserialize_with = "deserialize_flag")]
    pub iscrowd: bool,
}

/// One `categories` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    #[serde(default)]
    pub supercategory: String,
}

/// A parsed and validated COCO instances file: every annotation's image and category exist,
/// and ids are unique.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoDataset {
    pub images: Vec<ImageInfo>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub categories: Vec<Category>,
}

/// Marks an absent `area`; replaced by `w*h` in [`CocoDataset::validate`].
fn missing_area() -> f64 {
    f64::NAN
}

fn deserialize_flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
    })
}

impl CocoDataset {
    /// Reads and validates a COCO instances JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CocoError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| CocoError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_slice(&bytes, &path.display().to_string())
    }

    /// Parses and validates COCO JSON held in memory; `source_name` names it in errors.
    pub fn from_slice(bytes: &[u8], source_name: &str) -> Result<Self, CocoError> {
        let mut dataset: CocoDataset =
            serde_json::from_slice(bytes).map_err(|e| CocoError::json(source_name, e))?;
        dataset.validate(source_name)?;
        Ok(dataset)
    }

    /// Checks unique ids, known image and category ids, finite boxes; fills a missing `area`.
    fn validate(&mut self, source_name: &str) -> Result<(), CocoError> {
        let duplicate = |kind, id| CocoError::DuplicateId {
            source_name: source_name.to_string(),
            kind,
            id,
        };
        let mut images = HashMap::with_capacity(self.images.len());
        for image in &self.images {
            if images.insert(image.id, ()).is_some() {
                return Err(duplicate("image", image.id));
            }
        }
        let mut categories = HashMap::with_capacity(self.categories.len());
        for category in &self.categories {
            if categories.insert(category.id, ()).is_some() {
                return Err(duplicate("category", category.id));
            }
        }
        let mut annotation_ids = HashMap::with_capacity(self.annotations.len());
        for ann in &mut self.annotations {
            if annotation_ids.insert(ann.id, ()).is_some() {
                return Err(duplicate("annotation", ann.id));
            }
            if !images.contains_key(&ann.image_id) {
                return Err(CocoError::UnknownImage {
                    source_name: source_name.to_string(),
                    annotation_id: ann.id,
                    image_id: ann.image_id,
                });
            }
            if !categories.contains_key(&ann.category_id) {
                return Err(CocoError::UnknownCategory {
                    source_name: source_name.to_string(),
                    annotation_id: ann.id,
                    category_id: ann.category_id,
                });
            }
            if ann.bbox.iter().any(|v| !v.is_finite()) {
                return Err(CocoError::BadBox {
                    source_name: source_name.to_string(),
                    annotation_id: ann.id,
                    bbox: ann.bbox,
                });
            }
            if ann.area.is_nan() {
                ann.area = ann.bbox[2] * ann.bbox[3];
            }
        }
        Ok(())
    }

    /// Position of each image id in `images`.
    pub fn image_index(&self) -> HashMap<ImageId, usize> {
        self.images
            .iter()
            .enumerate()
            .map(|(i, image)| (image.id, i))
            .collect()
    }

    /// For each image (in `images` order), the positions of its annotations in `annotations`,
    /// in file order.
    pub fn annotations_per_image(&self) -> Vec<Vec<usize>> {
        let index = self.image_index();
        let mut per_image = vec![Vec::new(); self.images.len()];
        for (a, ann) in self.annotations.iter().enumerate() {
            // validate() guarantees the image exists.
            if let Some(&i) = index.get(&ann.image_id) {
                per_image[i].push(a);
            }
        }
        per_image
    }

    /// The category map of this file: its categories by ascending id ↔ labels 1..K.
    pub fn category_map(&self) -> CategoryMap {
        CategoryMap::from_categories(&self.categories)
    }
}
