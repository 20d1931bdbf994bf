//! MultiScaleRoIAlign and the box head as ONNX nodes.
//!
//! Each level's scale is torchvision's `_infer_scale`, `2^round(log2(feature_h / image_h))`,
//! computed in the graph from the resized height (any image size). `RoiAlign` takes its
//! `spatial_scale` as a fixed attribute, so the graph multiplies the boxes by the (power of
//! two, hence exact) scale and runs `RoiAlign` with scale 1 and `output_half_pixel`: no
//! half-pixel shift, torchvision's `aligned=False`. Boxes go to the level of FPN Eq. 1
//! (`floor(4 + log2(sqrt(area) / 224) + 1e-6)`, clamped), are pooled level by level, and the
//! rows are put back in proposal order.
use candle_nn::VarBuilder;
use heads::roi_heads::RoiHeadsConfig;

use super::graph::{attr_f, attr_i, attr_s, GraphBuilder};
use super::proto::data_type;
use super::ExportError;

/// `(class logits [K, C], box deltas [K, 4C])` of `proposals` (`[K, 4]`).
#[allow(clippy::too_many_arguments)]
pub fn box_predictions(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    features: &[String],
    proposals: &str,
    resized_hw: &str,
    config: &RoiHeadsConfig,
    channels: usize,
    num_classes: usize,
) -> Result<(String, String), ExportError> {
    let pooled = multi_scale_roi_align(
        g,
        &features[..config.pooled_levels],
        proposals,
        resized_hw,
        config,
    );
    let x = g.node("Flatten", &[&pooled], vec![attr_i("axis", 1)]); // [K, C*p*p]
    let p = config.pool_size;
    let r = config.representation_size;
    let x = linear(g, vb, &x, "roi_heads.box_head.fc6", channels * p * p, r)?;
    let x = g.unary("Relu", &x);
    let x = linear(g, vb, &x, "roi_heads.box_head.fc7", r, r)?;
    let x = g.unary("Relu", &x);
    let logits = linear(
        g,
        vb,
        &x,
        "roi_heads.box_predictor.cls_score",
        r,
        num_classes,
    )?;
    let deltas = linear(
        g,
        vb,
        &x,
        "roi_heads.box_predictor.bbox_pred",
        r,
        4 * num_classes,
    )?;
    Ok((logits, deltas))
}

/// `x @ W^T + b` as `Gemm`, weights at `{name}.weight` (`[out, in]`), `{name}.bias`.
fn linear(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    x: &str,
    name: &str,
    cin: usize,
    cout: usize,
) -> Result<String, ExportError> {
    let weight = vb.get((cout, cin), &format!("{name}.weight"))?;
    let bias = vb.get(cout, &format!("{name}.bias"))?;
    let w = g.init_f32(
        &format!("{name}.weight"),
        &[cout, cin],
        &weight.flatten_all()?.to_vec1::<f32>()?,
    );
    let b = g.init_f32(&format!("{name}.bias"), &[cout], &bias.to_vec1::<f32>()?);
    Ok(g.node("Gemm", &[x, &w, &b], vec![attr_i("transB", 1)]))
}

/// `[K, C, p, p]` pooled features of `boxes` (`[K, 4]`), in box order.
fn multi_scale_roi_align(
    g: &mut GraphBuilder,
    features: &[String],
    boxes: &str,
    resized_hw: &str,
    config: &RoiHeadsConfig,
) -> String {
    let ln2 = g.float(std::f32::consts::LN_2);
    let hw = g.cast(resized_hw, data_type::FLOAT);
    let index0 = g.int(0);
    let image_h = g.gather(&hw, &index0, 0);
    // Per level: log2 of the scale, rounded (half to even, as torch.round).
    let log_scales: Vec<String> = features
        .iter()
        .map(|f| {
            let fh = g.dim(f, 2);
            let fh = g.cast(&fh, data_type::FLOAT);
            let fh = g.reshape(&fh, &[]);
            let approx = g.binary("Div", &fh, &image_h);
            let log = g.unary("Log", &approx);
            let log2 = g.binary("Div", &log, &ln2);
            g.unary("Round", &log2)
        })
        .collect();
    let k_min = g.unary("Neg", &log_scales[0]);
    let k_max = g.unary("Neg", &log_scales[features.len() - 1]);

    // FPN Eq. 1 level of each box.
    let lo = g.slice(boxes, 1, 0, 2);
    let hi = g.slice(boxes, 1, 2, 4);
    let sides = g.binary("Sub", &hi, &lo);
    let w = g.slice(&sides, 1, 0, 1);
    let h = g.slice(&sides, 1, 1, 2);
    let area = g.binary("Mul", &w, &h);
    let area = g.reshape(&area, &[-1]);
    let s = g.unary("Sqrt", &area);
    let canonical = g.float(224.0);
    let ratio = g.binary("Div", &s, &canonical);
    let log = g.unary("Log", &ratio);
    let log2 = g.binary("Div", &log, &ln2);
    let four = g.float(4.0);
    let eps = g.float(1e-6);
    let lvl = g.binary("Add", &four, &log2);
    let lvl = g.binary("Add", &lvl, &eps);
    let lvl = g.unary("Floor", &lvl);
    let lvl = g.node("Clip", &[&lvl, &k_min, &k_max], vec![]);
    let lvl = g.binary("Sub", &lvl, &k_min); // [K] 0..L-1

    let (mut parts, mut orders) = (vec![], vec![]);
    for (l, feature) in features.iter().enumerate() {
        let l_f = g.float(l as f32);
        let member = g.binary("Equal", &lvl, &l_f);
        let rows = g.compress_rows(boxes, &member); // [k_l, 4]
        let two = g.float(2.0);
        let scale = g.binary("Pow", &two, &log_scales[l]);
        let rois = g.binary("Mul", &rows, &scale);
        let first = g.slice(&rows, 1, 0, 1);
        let zero = g.float(0.0);
        let zeros = g.binary("Mul", &first, &zero);
        let zeros = g.reshape(&zeros, &[-1]);
        let batch = g.cast(&zeros, data_type::INT64); // [k_l] all image 0
        let p = config.pool_size as i64;
        parts.push(g.node(
            "RoiAlign",
            &[feature, &rois, &batch],
            vec![
                attr_s("coordinate_transformation_mode", "output_half_pixel"),
                attr_s("mode", "avg"),
                attr_i("output_height", p),
                attr_i("output_width", p),
                attr_i("sampling_ratio", config.sampling_ratio),
                attr_f("spatial_scale", 1.0),
            ],
        ));
        let nz = g.unary("NonZero", &member); // [1, k_l]
        orders.push(g.reshape(&nz, &[-1]));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let pooled = g.concat(&refs, 0); // grouped by level
    let refs: Vec<&str> = orders.iter().map(String::as_str).collect();
    let order = g.concat(&refs, 0); // pooled row j holds box order[j]
                                    // inverse[order[j]] = j
    let k = g.dim(boxes, 0);
    let k = g.reshape(&k, &[]);
    let (zero, one) = (g.int(0), g.int(1));
    let positions = g.node("Range", &[&zero, &k, &one], vec![]);
    let zero_i = g.int(0);
    let blank = g.binary("Mul", &positions, &zero_i);
    let inverse = g.node(
        "ScatterElements",
        &[&blank, &order, &positions],
        vec![attr_i("axis", 0)],
    );
    g.gather(&pooled, &inverse, 0)
}
