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
    let mut flags: Vec<(u16, u16)> = Vec::with_capacity(order.len());
    let mut tp_precision: Vec<f64> = Vec::new();
    for (a, &n_pos) in positives.iter().enumerate() {
        if n_pos == 0 {
            continue;
        }
        let n_pos = n_pos as f64;
        for (m, &max_det) in MAX_DETECTIONS.iter().enumerate() {
            // (matched, ignored) bits of the detections within max_det of their image, by score.
            flags.clear();
            flags.extend(
                order
                    .iter()
                    .map(|&i| i as usize)
                    .filter(|&i| (rank[i] as usize) < max_det)
                    .map(|i| (outcomes[i].matched[a], outcomes[i].ignored[a])),
            );
            for t in 0..T {
                let cell = (a * M + m) * T + t;
                let out = &mut curves.precision[cell * R..(cell + 1) * R];
                curves.recall[cell] =
                    precision_at_recalls(&flags, 1u16 << t, n_pos, &mut tp_precision, out);
            }
        }
    }
    curves
}

/// pycocotools' precision curve at the 101 recall points, and the final recall, for one
/// threshold `bit` over detections sorted by score.
///
/// pycocotools computes, at every detection `i`, `rc[i] = tp/n_pos` and
/// `pr[i] = tp/(fp+tp+eps)` (cumulative counts), takes the envelope (suffix maximum) of `pr`,
/// and reads it at `searchsorted(rc, r, "left")`. Both change direction only at true positives:
/// `rc` grows only there, and `pr` grows only there (it falls at false positives and stays at
/// ignored ones), so the first index reaching a recall > 0 is a true positive and every suffix
/// maximum is attained at a true positive. We therefore evaluate `pr` only at true positives,
/// with the same doubles, which is exact and skips a division per detection.
fn precision_at_recalls(
    flags: &[(u16, u16)],
    bit: u16,
    n_pos: f64,
    tp_precision: &mut Vec<f64>,
    out: &mut [f64],
) -> f64 {
    tp_precision.clear();
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for &(matched, ignored) in flags {
        if ignored & bit == 0 {
            if matched & bit != 0 {
                tp += 1.0;
                tp_precision.push(tp / (fp + tp + EPSILON));
            } else {
                fp += 1.0;
            }
        }
    }
    // Envelope over the true positives (suffix maximum).
    for k in (1..tp_precision.len()).rev() {
        if tp_precision[k] > tp_precision[k - 1] {
            tp_precision[k - 1] = tp_precision[k];
        }
    }
    // The k-th true positive (0-based) sits where recall first equals (k + 1) / n_pos.
    let mut k = 0;
    for (r, q) in out.iter_mut().enumerate() {
        let threshold = recall_threshold(r);
        while k < tp_precision.len() && ((k + 1) as f64 / n_pos) < threshold {
            k += 1;
        }
        // Recall 0 is reached at the first detection, whose envelope is the maximum over all
        // true positives (0 when there are none); past the last true positive recall is never
        // reached and the point stays 0, as in pycocotools.
        *q = tp_precision.get(k).copied().unwrap_or(0.0);
    }
    if flags.is_empty() {
        0.0
    } else {
        tp / n_pos
    }
}

#[cfg(test)]
mod tests;
