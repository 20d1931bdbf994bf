//! Pascal VOC detection AP at IoU 0.5, per class, as the VOC devkit computes it
//! (`VOCevaldet.m`): VOC07's 11-point interpolated AP and VOC2010-12's area under the
//! monotone precision envelope ("all points").
//!
//! Per class, detections of every image are sorted by score (stable, as Matlab's `sort`); each
//! is matched to the ground truth box of its image with the highest IoU (the first on ties):
//! - IoU >= 0.5 with a non-difficult box not yet taken → true positive, the box is taken;
//! - IoU >= 0.5 with a non-difficult box already taken → false positive (duplicate);
//! - IoU >= 0.5 with a difficult box → ignored (neither; the box is never taken);
//! - otherwise → false positive.
//!
//! Recall is over the non-difficult boxes only. Boxes here are continuous (ours); the devkit's
//! `+1` pixel areas on VOC's inclusive integer boxes give the same IoU once boxes are converted
//! as [`crate::formats::voc`] does, so no `+1` appears below. Differences from the devkit: the
//! threshold test is the devkit's `>=` (the py-faster-rcnn/detectron2 port uses `>`); a class
//! without any non-difficult box has no AP (the devkit divides by zero) and is left out of the
//! means; precision where no detection has been decided yet is 0 (as the Python port), not NaN.
//!
//! Ground truth comes from a [`CocoDataset`] whose `iscrowd` marks VOC's `difficult`.
use std::collections::HashMap;

use serde_json::json;

use super::{Detection, EvalError};
use crate::coco::{CategoryId, CocoDataset, ImageId};

/// The IoU a detection needs with a ground-truth box to count, VOC's `minoverlap`.
pub const VOC_IOU_THRESHOLD: f64 = 0.5;

#[derive(Debug, Clone, Copy)]
struct GroundTruth {
    xyxy: [f64; 4],
    difficult: bool,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    image: usize,
    xyxy: [f64; 4],
    score: f64,
}

/// VOC AP of detections against a dataset's ground truth.
#[derive(Debug, Clone)]
pub struct VocEvaluator {
    image_index: HashMap<ImageId, usize>,
    category_index: HashMap<CategoryId, usize>,
    /// `(id, name)` by ascending id.
    categories: Vec<(CategoryId, String)>,
    /// Per category, per image (position in `images`): its boxes in file order.
    gts: Vec<Vec<Vec<GroundTruth>>>,
    /// Per category: detections in feed order.
    dts: Vec<Vec<Candidate>>,
}

/// One class's result.
#[derive(Debug, Clone, PartialEq)]
pub struct VocClassAp {
    pub category_id: CategoryId,
    pub name: String,
    /// Non-difficult ground-truth boxes (the devkit's `npos`).
    pub positives: usize,
    /// VOC07 11-point AP; None without positives.
    pub ap07: Option<f64>,
    /// VOC2010-12 area AP; None without positives.
    pub ap12: Option<f64>,
}

/// Per-class APs and their means over the classes that have positives.
#[derive(Debug, Clone, PartialEq)]
pub struct VocMetrics {
    pub classes: Vec<VocClassAp>,
    pub map07: f64,
    pub map12: f64,
}

fn xywh_to_xyxy([x, y, w, h]: [f64; 4]) -> [f64; 4] {
    [x, y, x + w, y + h]
}

impl VocEvaluator {
    /// Indexes the ground truth; `iscrowd` annotations are VOC's difficult objects.
    pub fn new(gt: &CocoDataset) -> Self {
        let image_index = gt.image_index();
        let mut categories: Vec<(CategoryId, String)> = gt
            .categories
            .iter()
            .map(|c| (c.id, c.name.clone()))
            .collect();
        categories.sort_by_key(|c| c.0);
        categories.dedup_by_key(|c| c.0);
        let category_index: HashMap<CategoryId, usize> = categories
            .iter()
            .enumerate()
            .map(|(k, c)| (c.0, k))
            .collect();
        let mut gts = vec![vec![Vec::new(); gt.images.len()]; categories.len()];
        for ann in &gt.annotations {
            if let (Some(&i), Some(&k)) = (
                image_index.get(&ann.image_id),
                category_index.get(&ann.category_id),
            ) {
                gts[k][i].push(GroundTruth {
                    xyxy: xywh_to_xyxy(ann.bbox),
                    difficult: ann.iscrowd,
                });
            }
        }
        let dts = vec![Vec::new(); categories.len()];
        VocEvaluator {
            image_index,
            category_index,
            categories,
            gts,
            dts,
        }
    }

    /// Adds detections (COCO `[x, y, w, h]` boxes, category ids of the dataset).
    pub fn add_detections(&mut self, detections: &[Detection]) -> Result<(), EvalError> {
        let source_name = || "detections".to_string();
        for (index, d) in detections.iter().enumerate() {
            if d.bbox.iter().any(|v| !v.is_finite()) || !d.score.is_finite() {
                return Err(EvalError::NonFinite {
                    source_name: source_name(),
                    index,
                    bbox: d.bbox,
                    score: d.score,
                });
            }
            let Some(&image) = self.image_index.get(&d.image_id) else {
                return Err(EvalError::UnknownImage {
                    source_name: source_name(),
                    index,
                    image_id: d.image_id,
                });
            };
            let Some(&k) = self.category_index.get(&d.category_id) else {
                return Err(EvalError::UnknownCategory {
                    source_name: source_name(),
                    index,
                    category_id: d.category_id,
                });
            };
            self.dts[k].push(Candidate {
                image,
                xyxy: xywh_to_xyxy(d.bbox),
                score: d.score,
            });
        }
        Ok(())
    }

    /// VOC07 and VOC12 AP of every class at IoU [`VOC_IOU_THRESHOLD`].
    pub fn evaluate(&self) -> VocMetrics {
        let classes: Vec<VocClassAp> = self
            .categories
            .iter()
            .enumerate()
            .map(|(k, (id, name))| {
                let (positives, recall, precision) = self.curve(k);
                let defined = positives > 0;
                VocClassAp {
                    category_id: *id,
                    name: name.clone(),
                    positives,
                    ap07: defined.then(|| ap_11_point(&recall, &precision)),
                    ap12: defined.then(|| ap_area(&recall, &precision)),
                }
            })
            .collect();
        let mean = |f: fn(&VocClassAp) -> Option<f64>| {
            let values: Vec<f64> = classes.iter().filter_map(f).collect();
            if values.is_empty() {
                0.0
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        };
        VocMetrics {
            map07: mean(|c| c.ap07),
            map12: mean(|c| c.ap12),
            classes,
        }
    }

    /// `(npos, recall, precision)` of category `k`, one point per detection by falling score.
    fn curve(&self, k: usize) -> (usize, Vec<f64>, Vec<f64>) {
        let gts = &self.gts[k];
        let positives = gts.iter().flatten().filter(|g| !g.difficult).count();
        let mut order: Vec<&Candidate> = self.dts[k].iter().collect();
        order.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut taken: Vec<Vec<bool>> = gts.iter().map(|g| vec![false; g.len()]).collect();
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut recall = Vec::with_capacity(order.len());
        let mut precision = Vec::with_capacity(order.len());
        for d in order {
            let mut best: Option<(f64, usize)> = None;
            for (j, g) in gts[d.image].iter().enumerate() {
                let ov = iou(&d.xyxy, &g.xyxy);
                if ov.is_some_and(|ov| best.is_none_or(|(b, _)| ov > b)) {
                    best = ov.map(|ov| (ov, j));
                }
            }
            match best {
                Some((ov, j)) if ov >= VOC_IOU_THRESHOLD => {
                    if !gts[d.image][j].difficult {
                        if taken[d.image][j] {
                            fp += 1;
                        } else {
                            taken[d.image][j] = true;
                            tp += 1;
                        }
                    }
                }
                _ => fp += 1,
            }
            recall.push(tp as f64 / positives as f64);
            precision.push(tp as f64 / (tp + fp).max(1) as f64);
        }
        (positives, recall, precision)
    }
}

/// IoU of two continuous xyxy boxes; None when they do not overlap (the devkit skips those).
fn iou(a: &[f64; 4], b: &[f64; 4]) -> Option<f64> {
    let iw = a[2].min(b[2]) - a[0].max(b[0]);
    let ih = a[3].min(b[3]) - a[1].max(b[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return None;
    }
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    Some(inter / union)
}

/// VOC07: the mean over t = 0, 0.1, ..., 1 of the best precision at recall >= t (0 if none).
/// Thresholds are `k / 10`, the decimals the devkit means.
pub fn ap_11_point(recall: &[f64], precision: &[f64]) -> f64 {
    (0..=10)
        .map(|k| {
            let t = k as f64 / 10.0;
            recall
                .iter()
                .zip(precision)
                .filter(|(r, _)| **r >= t)
                .map(|(_, p)| *p)
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / 11.0
}

/// VOC2010-12: precision made monotone from the right, integrated over the recall steps.
pub fn ap_area(recall: &[f64], precision: &[f64]) -> f64 {
    let mrec: Vec<f64> = [0.0]
        .into_iter()
        .chain(recall.iter().copied())
        .chain([1.0])
        .collect();
    let mut mpre: Vec<f64> = [0.0]
        .into_iter()
        .chain(precision.iter().copied())
        .chain([0.0])
        .collect();
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (1..mrec.len())
        .filter(|&i| mrec[i] != mrec[i - 1])
        .map(|i| (mrec[i] - mrec[i - 1]) * mpre[i])
        .sum()
}

impl VocMetrics {
    /// A per-class table with both APs and their means.
    pub fn table(&self) -> String {
        let width = self
            .classes
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let fmt = |v: Option<f64>| v.map_or("       -".to_string(), |v| format!("{v:8.4}"));
        let mut out = format!(
            "Pascal VOC AP@0.5 (difficult objects ignored)\n{:width$}  positives  VOC07 AP  VOC12 AP\n",
            "class"
        );
        for c in &self.classes {
            out += &format!(
                "{:width$}  {:9}  {}  {}\n",
                c.name,
                c.positives,
                fmt(c.ap07),
                fmt(c.ap12)
            );
        }
        out += &format!(
            "{:width$}  {:9}  {:8.4}  {:8.4}\n",
            "mAP", "", self.map07, self.map12
        );
        out
    }

    /// `{"mAP07", "mAP12", "per_class": [{id, name, positives, AP07, AP12}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "mAP07": self.map07,
            "mAP12": self.map12,
            "per_class": self.classes.iter().map(|c| json!({
                "id": c.category_id,
                "name": c.name,
                "positives": c.positives,
                "AP07": c.ap07,
                "AP12": c.ap12,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests;
