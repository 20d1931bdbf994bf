//! Host NMS: greedy suppression over boxes sorted by score, with areas precomputed once.
//!
//! The arithmetic mirrors torchvision's CPU kernel in f32 (`inter / (area_i + area_j - inter)`,
//! `std::max`/`std::min` operand order), and the IoU is compared with the f64 threshold as
//! torchvision's `float > double` comparison does, so kept sets are identical bit for bit.
//! Instead of a suppressed flag per box, the still-alive candidates are kept compacted in
//! structure-of-arrays form: each kept box scans only the survivors, contiguously.

use std::cmp::Ordering;

/// Descending score order, NaN first (torch's descending sort puts NaN first), ties by lower
/// index (a stable sort; torchvision's CPU sort is unstable, so its tie order is an artefact
/// of the machine's sort implementation).
pub(crate) fn score_order(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a as usize], scores[b as usize]);
        match (sa.is_nan(), sb.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => sb.partial_cmp(&sa).unwrap_or(Ordering::Equal),
        }
    });
    order
}

/// The largest f32 `t` with `t <= threshold`: for every f32 `x`, `x > t` iff `(x as f64) >
/// threshold`, so the hot loop compares in f32 with torchvision's f64 semantics.
pub(crate) fn f32_threshold(threshold: f64) -> f32 {
    if threshold.is_nan() {
        return f32::NAN; // nothing compares greater: nothing is suppressed
    }
    let t = threshold as f32;
    if (t as f64) > threshold {
        next_down(t)
    } else {
        t
    }
}

fn next_down(t: f32) -> f32 {
    if t.is_infinite() && t < 0.0 {
        return t;
    }
    if t == 0.0 {
        return -f32::from_bits(1);
    }
    let bits = t.to_bits();
    f32::from_bits(if t > 0.0 { bits - 1 } else { bits + 1 })
}

/// C++ `std::max(a, b)`: `(a < b) ? b : a` (differs from `f32::max` on NaN).
#[inline(always)]
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// C++ `std::min(a, b)`: `(b < a) ? b : a`.
#[inline(always)]
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Greedy NMS over the boxes `order` selects (already sorted by decreasing score); returns the
/// kept entries of `order`, in order.
pub(crate) fn nms_sorted(boxes: &[f32], order: &[u32], threshold: f32) -> Vec<u32> {
    let n = order.len();
    let (mut x1, mut y1, mut x2, mut y2, mut area, mut idx) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for &i in order {
        let b = &boxes[4 * i as usize..4 * i as usize + 4];
        x1.push(b[0]);
        y1.push(b[1]);
        x2.push(b[2]);
        y2.push(b[3]);
        area.push((b[2] - b[0]) * (b[3] - b[1]));
        idx.push(i);
    }
    let mut keep = Vec::new();
    let mut len = n;
    let mut pos = 0;
    while pos < len {
        keep.push(idx[pos]);
        let (ix1, iy1, ix2, iy2, ia) = (x1[pos], y1[pos], x2[pos], y2[pos], area[pos]);
        let mut w = pos + 1;
        for j in pos + 1..len {
            let xx1 = cmax(ix1, x1[j]);
            let yy1 = cmax(iy1, y1[j]);
            let xx2 = cmin(ix2, x2[j]);
            let yy2 = cmin(iy2, y2[j]);
            let iw = cmax(0.0, xx2 - xx1);
            let ih = cmax(0.0, yy2 - yy1);
            let inter = iw * ih;
            let ovr = inter / (ia + area[j] - inter);
            // Survivors are compacted in place (unconditional store, conditional advance).
            x1[w] = x1[j];
            y1[w] = y1[j];
            x2[w] = x2[j];
            y2[w] = y2[j];
            area[w] = area[j];
            idx[w] = idx[j];
            let suppressed = ovr > threshold; // false for NaN: a NaN IoU suppresses nothing
            w += usize::from(!suppressed);
        }
        len = w;
        pos += 1;
    }
    keep
}

/// `nms` on host slices: `boxes` is `[N * 4]` xyxy, `scores` is `[N]`.
pub(crate) fn nms(boxes: &[f32], scores: &[f32], iou_threshold: f64) -> Vec<u32> {
    let order = score_order(scores);
    nms_sorted(boxes, &order, f32_threshold(iou_threshold))
}

/// Above this many boxes torchvision's CPU `batched_nms` runs NMS per class (`numel > 4000`);
/// at or below it, one NMS over boxes offset by `class * (max_coordinate + 1)`. Both keep the
/// same set; we follow the same switch so that even the float rounding of the offset boxes
/// matches.
pub(crate) const PER_CLASS_ABOVE: usize = 1000;

/// `batched_nms` on host slices; `classes` are the class ids as i64.
pub(crate) fn batched_nms(
    boxes: &[f32],
    scores: &[f32],
    classes: &[i64],
    iou_threshold: f64,
) -> Vec<u32> {
    let n = scores.len();
    if n == 0 {
        return Vec::new();
    }
    let threshold = f32_threshold(iou_threshold);
    let order = score_order(scores);
    if n <= PER_CLASS_ABOVE {
        // torchvision: offsets = idxs.to(boxes) * (boxes.max() + 1), all in f32.
        let max = boxes.iter().copied().fold(f32::NEG_INFINITY, |m, v| {
            if v > m || v.is_nan() && !m.is_nan() {
                v
            } else {
                m
            }
        });
        let step = max + 1.0;
        let shifted: Vec<f32> = boxes
            .chunks_exact(4)
            .zip(classes)
            .flat_map(|(b, &c)| {
                let off = c as f32 * step;
                [b[0] + off, b[1] + off, b[2] + off, b[3] + off]
            })
            .collect();
        return nms_sorted(&shifted, &order, threshold);
    }
    // Per class: the global order restricted to a class is that class's own score order.
    let mut rank = vec![0u32; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let mut by_class: Vec<u32> = order.clone();
    by_class.sort_by_key(|&i| (classes[i as usize], rank[i as usize]));
    let mut kept = Vec::new();
    for group in by_class.chunk_by(|&a, &b| classes[a as usize] == classes[b as usize]) {
        kept.extend(nms_sorted(boxes, group, threshold));
    }
    kept.sort_by_key(|&i| rank[i as usize]);
    kept
}

#[cfg(test)]
mod tests;
