//! What a model's output label means: its category id and name.
//!
//! Two conventions meet here (COCO's 91 ids vs 80 classes):
//! - [`LabelScheme::Contiguous`]: a detector's classifier has K + 1 outputs; label 0 is the
//!   background and labels 1..K are the dataset's categories in ascending id order
//!   (torchvision's and detectron2's convention for models trained on a dataset, and ours).
//!   COCO 2017 has 80 categories with ids 1..90 (ids 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83
//!   are unused), so label 12 is COCO id 13 ("stop sign").
//! - [`LabelScheme::Identity`]: torchvision's pretrained COCO detectors have 91 outputs and their
//!   label *is* the COCO category id (1 = person ... 90 = toothbrush; unused ids are never
//!   predicted by a trained model).
//!
//! The map is serialisable so it travels with the model and predictions map back to category
//! ids and names. A contiguous map serialises as `{"categories": [...]}` (as model files have
//! always stored it); an identity map adds `"labels": "identity"`.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Category, CategoryId};

/// The label of the background class.
pub const BACKGROUND: u32 = 0;

/// The 80 COCO 2017 categories, `(id, name)`, as in `instances_*.json`.
#[rustfmt::skip]
pub const COCO_CATEGORIES: [(u64, &str); 80] = [
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
];

/// Number of outputs of torchvision's COCO detectors (background + ids up to 90).
pub const COCO_TORCHVISION_NUM_CLASSES: usize = 91;

/// How a model's labels relate to category ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelScheme {
    /// Label `i` (1..K) is the `i`-th category by ascending id.
    #[default]
    Contiguous,
    /// Label = category id (torchvision's 91-output COCO models).
    Identity,
}

/// One category as the map stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub id: CategoryId,
    pub name: String,
}

/// Model labels ↔ category ids and names (see the module docs for the two schemes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "CategoryList", into = "CategoryList")]
pub struct CategoryMap {
    /// Sorted by ascending id; with [`LabelScheme::Contiguous`] the label of `entries[i]` is
    /// `i + 1`, with [`LabelScheme::Identity`] it is the entry's id.
    entries: Vec<CategoryEntry>,
    label_of_id: HashMap<CategoryId, u32>,
    scheme: LabelScheme,
}

#[derive(Serialize, Deserialize)]
struct CategoryList {
    #[serde(default, skip_serializing_if = "is_contiguous")]
    labels: LabelScheme,
    categories: Vec<CategoryEntry>,
}

fn is_contiguous(scheme: &LabelScheme) -> bool {
    *scheme == LabelScheme::Contiguous
}

impl From<CategoryList> for CategoryMap {
    fn from(list: CategoryList) -> Self {
        Self::from_entries(list.categories, list.labels)
    }
}

impl From<CategoryMap> for CategoryList {
    fn from(map: CategoryMap) -> Self {
        CategoryList {
            labels: map.scheme,
            categories: map.entries,
        }
    }
}

impl Default for CategoryMap {
    /// No categories, label = id: every label reads as `class <label>` (see [`Self::category`]).
    fn default() -> Self {
        Self::from_entries(Vec::new(), LabelScheme::Identity)
    }
}

impl CategoryMap {
    /// Builds the contiguous map from a file's categories (any order; sorted by id here; a
    /// repeated id keeps its first entry).
    pub fn from_categories(categories: &[Category]) -> Self {
        Self::from_entries(
            categories
                .iter()
                .map(|c| CategoryEntry {
                    id: c.id,
                    name: c.name.clone(),
                })
                .collect(),
            LabelScheme::Contiguous,
        )
    }

    /// torchvision's COCO models: label = COCO category id, with COCO's names.
    pub fn coco_torchvision() -> Self {
        let entries = COCO_CATEGORIES
            .iter()
            .map(|&(id, name)| CategoryEntry {
                id,
                name: name.to_owned(),
            })
            .collect();
        Self::from_entries(entries, LabelScheme::Identity)
    }

    /// A model that knows only its class names (`names[i]` = label `i + 1`, as stored in the
    /// final model file); category ids are then the labels themselves.
    pub fn from_class_names(names: &[String]) -> Self {
        let entries = names
            .iter()
            .enumerate()
            .map(|(i, name)| CategoryEntry {
                id: i as u64 + 1,
                name: name.clone(),
            })
            .collect();
        Self::from_entries(entries, LabelScheme::Contiguous)
    }

    /// The best guess from the predictor's output count alone: COCO ids for 91 outputs,
    /// otherwise no names (every label reads as `class <label>`, id = label).
    pub fn for_num_classes(num_classes: usize) -> Self {
        if num_classes == COCO_TORCHVISION_NUM_CLASSES {
            Self::coco_torchvision()
        } else {
            Self::default()
        }
    }

    fn from_entries(mut entries: Vec<CategoryEntry>, scheme: LabelScheme) -> Self {
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        let label_of_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let label = match scheme {
                    LabelScheme::Contiguous => i as u32 + 1,
                    LabelScheme::Identity => e.id as u32,
                };
                (e.id, label)
            })
            .collect();
        CategoryMap {
            entries,
            label_of_id,
            scheme,
        }
    }

    /// How labels relate to ids.
    pub fn scheme(&self) -> LabelScheme {
        self.scheme
    }

    /// K, the number of object categories (a contiguous map's classifier has K + 1 outputs).
    pub fn num_categories(&self) -> usize {
        self.entries.len()
    }

    /// The label of a category id.
    pub fn label(&self, id: CategoryId) -> Option<u32> {
        self.label_of_id.get(&id).copied()
    }

    /// The category id of a label (None for [`BACKGROUND`] or no such category).
    pub fn category_id(&self, label: u32) -> Option<CategoryId> {
        self.entry(label).map(|e| e.id)
    }

    /// The category name of a label (None for [`BACKGROUND`] or no such category).
    pub fn name(&self, label: u32) -> Option<&str> {
        self.entry(label).map(|e| e.name.as_str())
    }

    /// The category of a label for output: a label without a category (background, unused,
    /// out of range) reads as id = label, named `class <label>`.
    pub fn category(&self, label: usize) -> CategoryEntry {
        match u32::try_from(label).ok().and_then(|l| self.entry(l)) {
            Some(entry) => entry.clone(),
            None => CategoryEntry {
                id: label as u64,
                name: format!("class {label}"),
            },
        }
    }

    /// The categories by ascending id.
    pub fn entries(&self) -> &[CategoryEntry] {
        &self.entries
    }

    fn entry(&self, label: u32) -> Option<&CategoryEntry> {
        if label == BACKGROUND {
            return None;
        }
        match self.scheme {
            LabelScheme::Contiguous => self.entries.get(label as usize - 1),
            LabelScheme::Identity => self
                .entries
                .binary_search_by_key(&u64::from(label), |e| e.id)
                .ok()
                .map(|i| &self.entries[i]),
        }
    }
}

#[cfg(test)]
mod tests;
