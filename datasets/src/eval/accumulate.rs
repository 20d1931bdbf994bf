//! Per category: evaluate every image, then precision at 101 recall points and the final recall
//! for each area range, max-detections limit and IoU threshold (`COCOeval.accumulate`).
use std::cmp::Ordering;

use super::match_image::{match_image, Candidate, GroundTruth, Outcome, Scratch};
use super::params::{
    recall_threshold, AREA_RANGES, EPSILON, IOU_THRESHOLDS, MAX_DETECTIONS,
    MAX_DETECTIONS_PER_IMAGE, RECALL_POINTS,
};

/// Marks a setting without any non-ignored ground truth (pycocotools' -1).
pub const UNDEFINED: f64 = -1.0;

const A: usize = AREA_RANGES.len();
const M: usize = MAX_DETECTIONS.len();
const T: usize = IOU_THRESHOLDS.len();
const R: usize = RECALL_POINTS;

/// One category's accumulated curves.
#[derive(Debug, Clone)]
pub(crate) struct CategoryCurves {
    /// `[A, M, T, R]`, row-major; [`UNDEFINED`] when no non-ignored gt.
    pub precision: Vec<f64>,
    /// `[A, M, T]`.
    pub recall: Vec<f64>,
}

/// Descending score, as `np.argsort(-scores, kind="mergesort")` orders (callers rely on the
/// sort being stable).
fn by_score_descending(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// Evaluates one category. `gts` must be ordered by image (file order within an image);
/// `dts` in any order (feed order is kept among equal scores, as pycocotools keeps file order).
pub(crate) fn accumulate_category(gts: &[GroundTruth], dts: &mut [Candidate]) -> CategoryCurves {
    // Per image: detections by score, at most 100 (computeIoU/evaluateImg).
    dts.sort_by(|a, b| {
        a.image
            .cmp(&b.image)
            .then_with(|| by_score_descending(a.score, b.score))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(dts.len());
    let mut rank: Vec<u8> = Vec::with_capacity(dts.len());
    let mut in_image = 0usize;
    for (i, d) in dts.iter().enumerate() {
        in_image = if i > 0 && dts[i - 1].image == d.image {
            in_image + 1
        } else {
            0
        };
        if in_image < MAX_DETECTIONS_PER_IMAGE {
            kept.push(*d);
            rank.push(in_image as u8);
        }
    }

    // Walk the images that have gts or detections of this category, in image order.
    let mut outcomes = vec![Outcome::default(); kept.len()];
    let mut positives = [0usize; A];
    let mut scratch = Scratch::default();
    let (mut g0, mut d0) = (0, 0);
    while g0 < gts.len() || d0 < kept.len() {
        let image = match (gts.get(g0), kept.get(d0)) {
            (Some(g), Some(d)) => g.image.min(d.image),
            (Some(g), None) => g.image,
            (None, Some(d)) => d.image,
            (None, None) => break,
        };
        let g1 = g0 + gts[g0..].iter().take_while(|g| g.image == image).count();
        let d1 = d0 + kept[d0..].iter().take_while(|d| d.image == image).count();
        let counted = match_image(
            &gts[g0..g1],
            &kept[d0..d1],
            &mut scratch,
            &mut outcomes[d0..d1],
        );
        for a in 0..A {
            positives[a] += counted[a];
        }
        (g0, d0) = (g1, d1);
    }

    // All images' detections by score: concatenated in image order, then a stable sort.
    let mut order: Vec<u32> = (0..kept.len() as u32).collect();
    order.sort_by(|&i, &j| by_score_descending(kept[i as usize].score, kept[j as usize].score));

    let mut curves = CategoryCurves {
        precision: vec![UNDEFINED; A * M * T * R],
        recall: vec![UNDEFINED; A * M * T],
    };
    let mut tp_cum: Vec<f64> = Vec::new();
    let mut fp_cum: Vec<f64> = Vec::new();
    let mut precision: Vec<f64> = Vec::new();
    let mut recall: Vec<f64> = Vec::new();
    for (a, &n_pos) in positives.iter().enumerate() {
        if n_pos == 0 {
            continue;
        }
        for (m, &max_det) in MAX_DETECTIONS.iter().enumerate() {
            let selected = order
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| (rank[i] as usize) < max_det);
            for t in 0..T {
                let bit = 1u16 << t;
                tp_cum.clear();
                fp_cum.clear();
                let (mut tp, mut fp) = (0.0f64, 0.0f64);
                for i in selected.clone() {
                    let o = &outcomes[i];
                    if o.ignored[a] & bit == 0 {
                        if o.matched[a] & bit != 0 {
                            tp += 1.0;
                        } else {
                            fp += 1.0;
                        }
                    }
                    tp_cum.push(tp);
                    fp_cum.push(fp);
                }
                let n_det = tp_cum.len();
                recall.clear();
                recall.extend(tp_cum.iter().map(|&tp| tp / n_pos as f64));
                precision.clear();
                precision.extend(
                    tp_cum
                        .iter()
                        .zip(&fp_cum)
                        .map(|(&tp, &fp)| tp / (fp + tp + EPSILON)),
                );
                let cell = (a * M + m) * T + t;
                curves.recall[cell] = recall.last().copied().unwrap_or(0.0);
                // The precision envelope: monotone non-increasing from the right.
                for i in (1..n_det).rev() {
                    if precision[i] > precision[i - 1] {
                        precision[i - 1] = precision[i];
                    }
                }
                // searchsorted(recall, thresholds, side="left"); past the end stays 0.
                let out = &mut curves.precision[cell * R..(cell + 1) * R];
                let mut i = 0;
                for (r, q) in out.iter_mut().enumerate() {
                    let threshold = recall_threshold(r);
                    while i < n_det && recall[i] < threshold {
                        i += 1;
                    }
                    *q = if i < n_det { precision[i] } else { 0.0 };
                }
            }
        }
    }
    curves
}
