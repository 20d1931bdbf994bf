//! COCO box evaluation with pycocotools' exact semantics, without tensors; Pascal VOC's
//! AP@0.5 (VOC07 11-point, VOC12 area) in [`voc`].
//!
//! Data flow: [`CocoEvaluator::new`] indexes a [`crate::coco::CocoDataset`]'s ground truth →
//! detections in COCO category ids are fed with [`CocoEvaluator::add_detections`] (image by
//! image during training, or a whole results file via [`CocoEvaluator::add_results_file`]) →
//! [`CocoEvaluator::evaluate`] matches every image and category (`match_image`), accumulates
//! precision/recall curves per category (`accumulate`) and returns [`CocoMetrics`]: the 12
//! summary numbers, per-category AP, and their printed forms (`summary`).
//!
//! pycocotools behaviours reproduced on purpose (its `COCO.loadRes` + `COCOeval`):
//! - a detection's area is `w*h` of its box and it is never a crowd; gt areas are the file's
//!   `area` field; IoUs in f64 with maskApi's operation order, crowd IoU = inter / det area;
//! - all images of the annotation file are evaluated (an image without detections still counts
//!   its gts); all categories of the file are evaluated (one without gt is -1, skipped in means);
//! - per image and category, detections sorted by score with a stable sort, at most 100;
//!   ties across images broken by ascending image id;
//! - IoU thresholds are numpy's linspace doubles (0.8999999999999999), recall points `i*0.01`;
//! - a match with a gt whose annotation id is 0 counts as unmatched (pycocotools stores the
//!   matched id and tests it for non-zero).
//!
//! Where we differ: a detection with an unknown category id is an error (pycocotools silently
//! drops it); an empty results list evaluates to zeros (pycocotools raises IndexError).
mod accumulate;
mod error;
mod evaluator;
mod match_image;
mod params;
mod results;
mod summary;
pub mod voc;

pub use accumulate::UNDEFINED;
pub use error::EvalError;
pub use evaluator::CocoEvaluator;
pub use params::{AreaRange, AREA_RANGES, IOU_THRESHOLDS, MAX_DETECTIONS, RECALL_POINTS};
pub use results::{load_results, parse_results, Detection};
pub use summary::{CategoryAp, CocoMetrics, STAT_NAMES};
pub use voc::{VocClassAp, VocEvaluator, VocMetrics, VOC_IOU_THRESHOLD};
