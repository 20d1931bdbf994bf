//! The RPN as ONNX nodes (inference): the shared head on every level, anchors built in the
//! graph from each level's size (stride = padded size // feature size, torchvision's integer
//! rule, so P6 of a 160-px batch has stride 53), per-level `TopK` of the logits, decode, clip,
//! small-box and score filters, batched NMS by level, the best `post_nms_top_n_test` kept.
use candle_nn::VarBuilder;
use heads::anchors::AnchorGenerator;
use heads::box_coder::BBOX_XFORM_CLIP;
use heads::rpn::RpnConfig;

use super::backbone::{conv_bias, ConvSpec};
use super::boxes::{batched_nms, clip_to_image, decode, is_large_enough};
use super::graph::{attr_i, GraphBuilder};
use super::proto::data_type;
use super::ExportError;

/// Proposals `[K, 4]` (xyxy, resized-image pixels), best first.
pub fn proposals(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    features: &[String],
    config: &RpnConfig,
    channels: usize,
    padded_hw: &str,
    resized_hw: &str,
) -> Result<String, ExportError> {
    let generator = AnchorGenerator::new(&config.anchors);
    let cells = generator.cell_anchors();
    if cells.len() != features.len() {
        return Err(ExportError::Unsupported(format!(
            "anchors configured for {} levels, the FPN gives {}",
            cells.len(),
            features.len()
        )));
    }
    let a = cells[0].len();
    let head = "rpn.head";
    // torchvision >= 0.13 spells the shared conv `conv.0.0`, older checkpoints `conv`.
    let conv_name = if vb.contains_tensor(&format!("{head}.conv.0.0.weight")) {
        format!("{head}.conv.0.0")
    } else {
        format!("{head}.conv")
    };
    let (mut logits, mut deltas, mut anchors, mut levels) = (vec![], vec![], vec![], vec![]);
    for (l, feature) in features.iter().enumerate() {
        let spec = ConvSpec::new(channels, channels, 3, 1, 1);
        let t = conv_bias(g, vb, feature, &conv_name, spec)?;
        let t = g.unary("Relu", &t);
        let obj = conv_bias(
            g,
            vb,
            &t,
            &format!("{head}.cls_logits"),
            ConvSpec::new(channels, a, 1, 1, 0),
        )?;
        let del = conv_bias(
            g,
            vb,
            &t,
            &format!("{head}.bbox_pred"),
            ConvSpec::new(channels, 4 * a, 1, 1, 0),
        )?;
        // [1, A, H, W] -> [H, W, A] -> [H*W*A]: the anchors' (y, x, anchor) order.
        let obj = g.node(
            "Transpose",
            &[&obj],
            vec![super::graph::attr_ints("perm", &[0, 2, 3, 1])],
        );
        let obj = g.reshape(&obj, &[-1]);
        // [1, 4A, H, W] -> [A, 4, H*W] -> [H*W, A, 4] -> [H*W*A, 4]
        let del = g.reshape(&del, &[a as i64, 4, -1]);
        let del = g.node(
            "Transpose",
            &[&del],
            vec![super::graph::attr_ints("perm", &[2, 0, 1])],
        );
        let del = g.reshape(&del, &[-1, 4]);
        let level_anchors = grid_anchors(g, feature, padded_hw, &cells[l]);

        let count = g.dim(&obj, 0);
        let top_n = g.ints(&[config.pre_nms_top_n_test as i64]);
        let k = g.binary("Min", &count, &top_n);
        let out = g.node_n(
            "TopK",
            &[&obj, &k],
            2,
            vec![attr_i("axis", 0), attr_i("largest", 1), attr_i("sorted", 1)],
        );
        let (values, index) = (&out[0], &out[1]);
        deltas.push(g.gather(&del, index, 0));
        anchors.push(g.gather(&level_anchors, index, 0));
        let level = g.float(l as f32);
        let shape = g.unary("Shape", values);
        levels.push(g.node("Expand", &[&level, &shape], vec![]));
        logits.push(values.clone());
    }
    let cat = |g: &mut GraphBuilder, parts: &[String]| {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.concat(&refs, 0)
    };
    let logits = cat(g, &logits);
    let deltas = cat(g, &deltas);
    let anchors = cat(g, &anchors);
    let levels = cat(g, &levels);
    let boxes = decode(g, &deltas, &anchors, [1.0; 4], BBOX_XFORM_CLIP as f32);
    let boxes = clip_to_image(g, &boxes, resized_hw);
    let scores = g.unary("Sigmoid", &logits);
    let large = is_large_enough(g, &boxes, config.min_size as f32);
    let thresh = g.float(config.score_thresh);
    let scored = g.binary("GreaterOrEqual", &scores, &thresh);
    let keep = g.binary("And", &large, &scored);
    let boxes = g.compress_rows(&boxes, &keep);
    let scores = g.compress_rows(&scores, &keep);
    let levels = g.compress_rows(&levels, &keep);
    let kept = batched_nms(
        g,
        &boxes,
        &scores,
        &levels,
        config.nms_thresh as f32,
        config.post_nms_top_n_test,
    );
    Ok(g.gather(&boxes, &kept, 0))
}

/// `[H*W*A, 4]` anchors of one level, `(y, x, anchor)` order: the cell anchors shifted by
/// `(x * stride_w, y * stride_h)`.
fn grid_anchors(
    g: &mut GraphBuilder,
    feature: &str,
    padded_hw: &str,
    cells: &[[f32; 4]],
) -> String {
    let shape = g.unary("Shape", feature);
    let hw = g.slice(&shape, 0, 2, 4); // [2] (H, W)
    let stride = g.binary("Div", padded_hw, &hw); // [2] integer division
    let axis = |g: &mut GraphBuilder, i: i64| {
        let index = g.int(i);
        let n = g.gather(&hw, &index, 0);
        let s = g.gather(&stride, &index, 0);
        let (zero, one) = (g.int(0), g.int(1));
        let steps = g.node("Range", &[&zero, &n, &one], vec![]);
        let shifts = g.binary("Mul", &steps, &s);
        g.cast(&shifts, data_type::FLOAT)
    };
    let ys = axis(g, 0); // [H]
    let xs = axis(g, 1); // [W]
    let ys = g.unsqueeze(&ys, &[1]); // [H, 1]
    let xs = g.unsqueeze(&xs, &[0]); // [1, W]
    let grid_x = g.node("Expand", &[&xs, &hw], vec![]); // [H, W]
    let grid_y = g.node("Expand", &[&ys, &hw], vec![]);
    let grid_x = g.unsqueeze(&grid_x, &[2]);
    let grid_y = g.unsqueeze(&grid_y, &[2]);
    let shifts = g.concat(&[&grid_x, &grid_y, &grid_x, &grid_y], 2); // [H, W, 4]
    let shifts = g.reshape(&shifts, &[-1, 1, 4]);
    let flat: Vec<f32> = cells.iter().flatten().copied().collect();
    let name = g.fresh("cell_anchors");
    let cells = g.init_f32(&name, &[1, cells.len(), 4], &flat);
    let all = g.binary("Add", &shifts, &cells); // [H*W, A, 4]
    g.reshape(&all, &[-1, 4])
}
