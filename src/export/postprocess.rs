//! torchvision's `postprocess_detections` and `transform.postprocess` as ONNX nodes: softmax,
//! every class's box decoded and clipped, background dropped, (proposal, class) pairs scoring
//! above `score_thresh` with both sides >= `min_size` kept, NMS per class, the best
//! `detections_per_img` kept, boxes scaled to the input image, labels mapped to category ids.
use heads::box_coder::BBOX_XFORM_CLIP;
use heads::roi_heads::RoiHeadsConfig;

use super::boxes::{batched_nms, clip_to_image, decode, is_large_enough};
use super::graph::{attr_i, GraphBuilder};
use super::proto::data_type;

/// The three graph outputs' names.
pub const OUTPUTS: [&str; 3] = ["boxes", "scores", "labels"];

/// Adds the postprocess; writes the outputs `boxes [K, 4]` (input pixels), `scores [K]`,
/// `labels [K]` (category ids, `category_ids[label]`).
#[allow(clippy::too_many_arguments)]
pub fn postprocess(
    g: &mut GraphBuilder,
    logits: &str,
    deltas: &str,
    proposals: &str,
    resized_hw: &str,
    ratios: &str,
    config: &RoiHeadsConfig,
    category_ids: &[i64],
) {
    let c = category_ids.len() as i64;
    let probs = g.node("Softmax", &[logits], vec![attr_i("axis", -1)]); // [K, C]
    let deltas = g.reshape(deltas, &[-1, c, 4]);
    let reference = g.unsqueeze(proposals, &[1]); // [K, 1, 4]
    let boxes = decode(
        g,
        &deltas,
        &reference,
        config.bbox_reg_weights,
        BBOX_XFORM_CLIP as f32,
    );
    let boxes = clip_to_image(g, &boxes, resized_hw); // [K, C, 4]
                                                      // Foreground classes 1..C, flattened (proposal, class) row-major.
    let boxes = g.slice(&boxes, 1, 1, c);
    let boxes = g.reshape(&boxes, &[-1, 4]);
    let scores = g.slice(&probs, 1, 1, c);
    let shape = g.unary("Shape", &scores);
    let scores = g.reshape(&scores, &[-1]);
    let classes: Vec<f32> = (1..c).map(|l| l as f32).collect();
    let name = g.fresh("foreground_labels");
    let classes = g.init_f32(&name, &[1, (c - 1) as usize], &classes);
    let labels = g.node("Expand", &[&classes, &shape], vec![]);
    let labels = g.reshape(&labels, &[-1]);

    let thresh = g.float(config.score_thresh);
    let scored = g.binary("Greater", &scores, &thresh);
    let large = is_large_enough(g, &boxes, config.min_size as f32);
    let keep = g.binary("And", &scored, &large);
    let boxes = g.compress_rows(&boxes, &keep);
    let scores = g.compress_rows(&scores, &keep);
    let labels = g.compress_rows(&labels, &keep);
    let kept = batched_nms(
        g,
        &boxes,
        &scores,
        &labels,
        config.nms_thresh as f32,
        config.detections_per_img,
    );
    let boxes = g.gather(&boxes, &kept, 0);
    let scores = g.gather(&scores, &kept, 0);
    let labels = g.gather(&labels, &kept, 0);

    let order = g.ints(&[1, 0, 1, 0]);
    let scale = g.gather(ratios, &order, 0); // [4] (rx, ry, rx, ry)
    let boxes = g.binary("Mul", &boxes, &scale);
    let labels = g.cast(&labels, data_type::INT64);
    let table = g.fresh("category_ids");
    g.init_i64(&table, &[category_ids.len()], category_ids);
    let ids = g.gather(&table, &labels, 0);
    for (value, output) in [boxes, scores, ids].iter().zip(OUTPUTS) {
        g.nodes.push(super::proto::NodeProto {
            input: vec![value.clone()],
            output: vec![output.to_string()],
            name: format!("output_{output}"),
            op_type: "Identity".into(),
            attribute: vec![],
        });
    }
}
