//! Per image and category: box IoUs and pycocotools' greedy matching at every IoU threshold and
//! area range (`COCOeval.computeIoU` + `evaluateImg`).
use super::params::{AREA_RANGES, IOU_THRESHOLDS};

/// A ground-truth box as the evaluator keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroundTruth {
    /// Position of the image in the ascending image ids.
    pub image: u32,
    /// The annotation id. pycocotools records a match as the matched gt's id, so a match with
    /// id 0 reads as "unmatched" later; we reproduce that.
    pub id: u64,
    pub bbox: [f64; 4],
    /// The annotation's `area` field (mask area), used for the area ranges.
    pub area: f64,
    pub crowd: bool,
}

/// A detection as the evaluator keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub image: u32,
    pub bbox: [f64; 4],
    pub score: f64,
}

/// Matching outcome of one detection: bit `t` of `matched[a]` / `ignored[a]` is set when at IoU
/// threshold `t` and area range `a` the detection matched a gt / is ignored.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    pub matched: [u16; 4],
    pub ignored: [u16; 4],
}

/// pycocotools' box IoU (maskApi.c `bbIou`), in f64 with the same operation order; for a crowd
/// gt the union is the detection's area alone.
fn box_iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let det_area = d[2] * d[3];
    let union = if crowd {
        det_area
    } else {
        det_area + g[2] * g[3] - inter
    };
    inter / union
}

/// Scratch buffers reused across images.
#[derive(Default)]
pub(crate) struct Scratch {
    ious: Vec<f64>,
    order: Vec<usize>,
    gt_taken: Vec<bool>,
    ignore: Vec<bool>,
}

/// Matches one image's detections of one category (sorted by score, at most 100) to its
/// ground truth (file order). Returns, per area range, the number of non-ignored gts, and
/// writes one [`Outcome`] per detection.
pub(crate) fn match_image(
    gts: &[GroundTruth],
    dts: &[Candidate],
    scratch: &mut Scratch,
    outcomes: &mut [Outcome],
) -> [usize; 4] {
    let (n_g, n_d) = (gts.len(), dts.len());
    let ious = &mut scratch.ious;
    ious.clear();
    for d in dts {
        ious.extend(gts.iter().map(|g| box_iou(&d.bbox, &g.bbox, g.crowd))); // [D, G]
    }
    let mut counted = [0usize; 4];
    for (a, range) in AREA_RANGES.iter().enumerate() {
        let ignore = &mut scratch.ignore;
        ignore.clear();
        ignore.extend(gts.iter().map(|g| g.crowd || !range.contains(g.area)));
        counted[a] = ignore.iter().filter(|&&i| !i).count();
        // gts with ignore last, each group in file order (a stable argsort of the flags).
        let order = &mut scratch.order;
        order.clear();
        order.extend((0..n_g).filter(|&g| !ignore[g]));
        order.extend((0..n_g).filter(|&g| ignore[g]));
        for (t, &threshold) in IOU_THRESHOLDS.iter().enumerate() {
            let taken = &mut scratch.gt_taken;
            taken.clear();
            taken.resize(n_g, false);
            for d in 0..n_d {
                let row = &ious[d * n_g..(d + 1) * n_g];
                let mut best_iou = threshold.min(1.0 - 1e-10);
                let mut best: Option<usize> = None;
                for &g in order.iter() {
                    if taken[g] && !gts[g].crowd {
                        continue;
                    }
                    // Matched a regular gt and reached the ignored ones: stop.
                    if best.is_some_and(|m| !ignore[m]) && ignore[g] {
                        break;
                    }
                    if row[g] < best_iou {
                        continue;
                    }
                    best_iou = row[g];
                    best = Some(g);
                }
                let bit = 1u16 << t;
                if let Some(m) = best {
                    taken[m] = true;
                    if ignore[m] {
                        outcomes[d].ignored[a] |= bit;
                    }
                    if gts[m].id != 0 {
                        outcomes[d].matched[a] |= bit;
                    }
                }
                // Unmatched detections outside the area range are ignored too.
                if outcomes[d].matched[a] & bit == 0 {
                    let det_area = dts[d].bbox[2] * dts[d].bbox[3];
                    if !range.contains(det_area) {
                        outcomes[d].ignored[a] |= bit;
                    }
                }
            }
        }
    }
    counted
}

#[cfg(test)]
mod tests;
