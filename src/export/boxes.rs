//! Box arithmetic as ONNX nodes, shared by the RPN and the postprocess: decode (torchvision's
//! `BoxCoder.decode_single`, same order of f32 operations as `heads::box_coder`), clip to the
//! image, the small-box test, and batched NMS.
//!
//! Batched NMS uses the coordinate-offset trick (torchvision's `_batched_nms_coordinate_trick`):
//! each group's boxes move by `group * (max coordinate + 1)` so that boxes of different groups
//! never overlap, then one `NonMaxSuppression` runs. ONNX Runtime then computes IoU on the
//! shifted coordinates; ours computes it on the originals, so an IoU within f32 rounding of the
//! threshold may be decided differently (measured in the README).
use super::graph::{attr_i, GraphBuilder};

/// `[..., 4]` deltas applied to `[..., 4]` reference boxes (broadcast), weights `(wx, wy, ww,
/// wh)`, `dw`/`dh` clamped at `clip`; returns xyxy `[..., 4]`.
pub fn decode(
    g: &mut GraphBuilder,
    deltas: &str,
    reference: &str,
    weights: [f32; 4],
    clip: f32,
) -> String {
    let col = |g: &mut GraphBuilder, x: &str, i: i64| g.slice(x, -1, i, i + 1);
    let (x1, y1, x2, y2) = (
        col(g, reference, 0),
        col(g, reference, 1),
        col(g, reference, 2),
        col(g, reference, 3),
    );
    let half = g.float(0.5);
    let w = g.binary("Sub", &x2, &x1);
    let h = g.binary("Sub", &y2, &y1);
    let half_w = g.binary("Mul", &w, &half);
    let half_h = g.binary("Mul", &h, &half);
    let cx = g.binary("Add", &x1, &half_w);
    let cy = g.binary("Add", &y1, &half_h);
    let delta = |g: &mut GraphBuilder, i: usize| {
        let d = col(g, deltas, i as i64);
        let wt = g.float(weights[i]);
        g.binary("Div", &d, &wt)
    };
    let (dx, dy, dw, dh) = (delta(g, 0), delta(g, 1), delta(g, 2), delta(g, 3));
    let clip = g.float(clip);
    let dw = g.binary("Min", &dw, &clip);
    let dh = g.binary("Min", &dh, &clip);
    let dxw = g.binary("Mul", &dx, &w);
    let pcx = g.binary("Add", &dxw, &cx);
    let dyh = g.binary("Mul", &dy, &h);
    let pcy = g.binary("Add", &dyh, &cy);
    let ew = g.unary("Exp", &dw);
    let pw = g.binary("Mul", &ew, &w);
    let eh = g.unary("Exp", &dh);
    let ph = g.binary("Mul", &eh, &h);
    let hw = g.binary("Mul", &pw, &half);
    let hh = g.binary("Mul", &ph, &half);
    let nx1 = g.binary("Sub", &pcx, &hw);
    let ny1 = g.binary("Sub", &pcy, &hh);
    let nx2 = g.binary("Add", &pcx, &hw);
    let ny2 = g.binary("Add", &pcy, &hh);
    g.concat(&[&nx1, &ny1, &nx2, &ny2], -1)
}

/// Clamps x to `[0, w]` and y to `[0, h]`; `resized_hw` is the i64 `[2]` `(h, w)`.
pub fn clip_to_image(g: &mut GraphBuilder, boxes: &str, resized_hw: &str) -> String {
    let hw = g.cast(resized_hw, super::proto::data_type::FLOAT);
    let order = g.ints(&[1, 0, 1, 0]);
    let upper = g.gather(&hw, &order, 0); // [4] (w, h, w, h)
    let zero = g.float(0.0);
    let low = g.binary("Max", boxes, &zero);
    g.binary("Min", &low, &upper)
}

/// `[N]` bool: both sides of each `[N, 4]` box at least `min_size`.
pub fn is_large_enough(g: &mut GraphBuilder, boxes: &str, min_size: f32) -> String {
    let lo = g.slice(boxes, 1, 0, 2);
    let hi = g.slice(boxes, 1, 2, 4);
    let sides = g.binary("Sub", &hi, &lo); // [N, 2]
    let min = g.float(min_size);
    let ok = g.binary("GreaterOrEqual", &sides, &min);
    let ok = g.cast(&ok, super::proto::data_type::INT64);
    // (not ReduceMin: its `axes` moved from attribute to input at opset 18)
    let w_ok = g.slice(&ok, 1, 0, 1);
    let h_ok = g.slice(&ok, 1, 1, 2);
    let both = g.binary("Mul", &w_ok, &h_ok);
    let both = g.reshape(&both, &[-1]);
    let one = g.ints(&[1]);
    g.binary("Equal", &both, &one)
}

/// Indices (into the `[N]` inputs) kept by NMS within each group, by decreasing score, at most
/// `max_kept`; `groups` is `[N]` f32 (level or class).
pub fn batched_nms(
    g: &mut GraphBuilder,
    boxes: &str,
    scores: &str,
    groups: &str,
    iou_threshold: f32,
    max_kept: usize,
) -> String {
    let flat = g.reshape(boxes, &[-1]);
    let zero = g.floats(&[0.0]);
    let with_zero = g.concat(&[&flat, &zero], 0); // never empty
    let max = g.node("ReduceMax", &[&with_zero], vec![attr_i("keepdims", 0)]);
    let one = g.float(1.0);
    let span = g.binary("Add", &max, &one);
    let offsets = g.binary("Mul", groups, &span); // [N]
    let offsets = g.unsqueeze(&offsets, &[1]);
    let shifted = g.binary("Add", boxes, &offsets); // [N, 4]
    let nms_boxes = g.unsqueeze(&shifted, &[0]); // [1, N, 4]
    let nms_scores = g.reshape(scores, &[1, 1, -1]); // [1, 1, N]
    let max_kept = g.ints(&[max_kept as i64]);
    let iou = g.floats(&[iou_threshold]);
    let selected = g.node(
        "NonMaxSuppression",
        &[&nms_boxes, &nms_scores, &max_kept, &iou],
        vec![],
    );
    let index = g.slice(&selected, 1, 2, 3); // [M, 1] (batch, class, box)
    g.reshape(&index, &[-1])
}
