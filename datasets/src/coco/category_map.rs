//! COCO's sparse category ids ↔ the contiguous labels a model predicts.
//!
//! COCO 2017 has 80 categories with ids 1..90 (ids 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83
//! are unused). A detector's classifier has K + 1 outputs: label 0 is the background and labels
//! 1..K are the categories in ascending id order (torchvision's and detectron2's convention;
//! torchvision's pretrained COCO models instead use the 91 raw ids, which is the identity map
//! over 1..90 plus unused slots). The map is serialisable so it travels with the model and
//! predictions map back to COCO ids and names.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Category, CategoryId};

/// The label of the background class.
pub const BACKGROUND: u32 = 0;

/// One category as the map stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub id: CategoryId,
    pub name: String,
}

/// Contiguous labels 1..K ↔ COCO category ids and names. Serialises as
/// `{"categories": [{"id": 1, "name": "person"}, ...]}` with label = position + 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "CategoryList", into = "CategoryList")]
pub struct CategoryMap {
    /// Sorted by ascending COCO id; label of `entries[i]` is `i + 1`.
    entries: Vec<CategoryEntry>,
    label_of_id: HashMap<CategoryId, u32>,
}

#[derive(Serialize, Deserialize)]
struct CategoryList {
    categories: Vec<CategoryEntry>,
}

impl From<CategoryList> for CategoryMap {
    fn from(list: CategoryList) -> Self {
        Self::from_entries(list.categories)
    }
}

impl From<CategoryMap> for CategoryList {
    fn from(map: CategoryMap) -> Self {
        CategoryList {
            categories: map.entries,
        }
    }
}

impl CategoryMap {
    /// Builds the map from a file's categories (any order; sorted by id here; a repeated id
    /// keeps its first entry).
    pub fn from_categories(categories: &[Category]) -> Self {
        Self::from_entries(
            categories
                .iter()
                .map(|c| CategoryEntry {
                    id: c.id,
                    name: c.name.clone(),
                })
                .collect(),
        )
    }

    fn from_entries(mut entries: Vec<CategoryEntry>) -> Self {
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        let label_of_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i as u32 + 1))
            .collect();
        CategoryMap {
            entries,
            label_of_id,
        }
    }

    /// K, the number of object categories (the classifier has K + 1 outputs).
    pub fn num_categories(&self) -> usize {
        self.entries.len()
    }

    /// The contiguous label (1..K) of a COCO category id.
    pub fn label(&self, id: CategoryId) -> Option<u32> {
        self.label_of_id.get(&id).copied()
    }

    /// The COCO category id of a label (None for [`BACKGROUND`] or out of range).
    pub fn category_id(&self, label: u32) -> Option<CategoryId> {
        self.entry(label).map(|e| e.id)
    }

    /// The category name of a label (None for [`BACKGROUND`] or out of range).
    pub fn name(&self, label: u32) -> Option<&str> {
        self.entry(label).map(|e| e.name.as_str())
    }

    /// The categories by ascending id (label = position + 1).
    pub fn entries(&self) -> &[CategoryEntry] {
        &self.entries
    }

    fn entry(&self, label: u32) -> Option<&CategoryEntry> {
        if label == BACKGROUND {
            return None;
        }
        self.entries.get(label as usize - 1)
    }
}

#[cfg(test)]
mod tests {
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
        let map =
            CategoryMap::from_categories(&[category(90, "toothbrush"), category(2, "bicycle")]);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(
            json,
            r#"{"categories":[{"id":2,"name":"bicycle"},{"id":90,"name":"toothbrush"}]}"#
        );
        let back: CategoryMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        assert_eq!(back.label(90), Some(2));
    }
}
