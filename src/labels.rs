//! What a model's output label means: its COCO category id and name.
//!
//! Two conventions meet here (COCO's 91 ids vs 80 classes):
//! - torchvision's COCO detectors have 91 outputs and their label *is* the COCO category id
//!   (1 = person ... 90 = toothbrush; ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused);
//! - models we train have `K + 1` outputs with contiguous labels `1..=K` (0 = background), label
//!   `i` being the dataset's `i`-th category in ascending id order.

/// One dataset category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// The dataset's category id (COCO: 1..=90).
    pub id: u64,
    /// Human-readable name, drawn on images and written to results files.
    pub name: String,
}

/// Model label -> category. Labels without an entry get `id = label`, name `class <label>`.
#[derive(Debug, Clone, Default)]
pub struct LabelMap {
    /// Indexed by model label; `None` for background and unused labels.
    by_label: Vec<Option<Category>>,
}

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

impl LabelMap {
    /// torchvision's COCO models: label = COCO category id.
    pub fn coco_torchvision() -> Self {
        let mut by_label = vec![None; COCO_TORCHVISION_NUM_CLASSES];
        for (id, name) in COCO_CATEGORIES {
            by_label[id as usize] = Some(Category {
                id,
                name: name.to_owned(),
            });
        }
        Self { by_label }
    }

    /// A model trained on `categories`: label `i` (1-based) = `categories[i - 1]`.
    pub fn contiguous(categories: &[Category]) -> Self {
        let by_label = std::iter::once(None)
            .chain(categories.iter().cloned().map(Some))
            .collect();
        Self { by_label }
    }

    /// A model trained by `detect train` on a dataset's categories (label `i` = the `i`-th
    /// category by ascending id), e.g. from the dataset the model is evaluated on.
    pub fn from_category_map(categories: &datasets::coco::CategoryMap) -> Self {
        let categories: Vec<Category> = categories
            .entries()
            .iter()
            .map(|entry| Category {
                id: entry.id,
                name: entry.name.clone(),
            })
            .collect();
        Self::contiguous(&categories)
    }

    /// A model that knows only its class names (`names[i]` = label `i + 1`, as stored in the
    /// final model file); category ids are then the labels themselves.
    pub fn from_class_names(names: &[String]) -> Self {
        let categories: Vec<Category> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Category {
                id: i as u64 + 1,
                name: name.clone(),
            })
            .collect();
        Self::contiguous(&categories)
    }

    /// The best guess from the predictor's output count alone: COCO ids for 91 outputs,
    /// otherwise generic `class <label>` names.
    pub fn for_num_classes(num_classes: usize) -> Self {
        if num_classes == COCO_TORCHVISION_NUM_CLASSES {
            Self::coco_torchvision()
        } else {
            Self::default()
        }
    }

    /// The category of a model label.
    pub fn category(&self, label: usize) -> Category {
        match self.by_label.get(label) {
            Some(Some(category)) => category.clone(),
            _ => Category {
                id: label as u64,
                name: format!("class {label}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_coco_label_is_category_id() {
        let labels = LabelMap::coco_torchvision();
        assert_eq!(labels.category(1).name, "person");
        assert_eq!(
            labels.category(90),
            Category {
                id: 90,
                name: "toothbrush".into()
            }
        );
        assert_eq!(labels.category(12).name, "class 12", "unused COCO id");
    }

    #[test]
    fn contiguous_labels_start_at_one() {
        let cats = [
            Category {
                id: 7,
                name: "a".into(),
            },
            Category {
                id: 9,
                name: "b".into(),
            },
        ];
        let labels = LabelMap::contiguous(&cats);
        assert_eq!(labels.category(2), cats[1]);
        assert_eq!(labels.category(0).name, "class 0");
        assert_eq!(labels.category(3).id, 3);
        let named = LabelMap::from_class_names(&["circle".into(), "square".into()]);
        assert_eq!(
            named.category(2),
            Category {
                id: 2,
                name: "square".into()
            }
        );
    }

    #[test]
    fn category_map_labels_follow_ascending_ids() {
        let coco = |id: u64, name: &str| datasets::coco::Category {
            id,
            name: name.into(),
            supercategory: String::new(),
        };
        let map =
            datasets::coco::CategoryMap::from_categories(&[coco(90, "toothbrush"), coco(3, "car")]);
        let labels = LabelMap::from_category_map(&map);
        assert_eq!(
            labels.category(1),
            Category {
                id: 3,
                name: "car".into()
            }
        );
        assert_eq!(
            labels.category(2),
            Category {
                id: 90,
                name: "toothbrush".into()
            }
        );
    }
}
