//! Backbone and FPN as ONNX nodes: every conv + FrozenBatchNorm pair becomes one `Conv` with
//! the BN folded in by [`backbones::FrozenBatchNorm2d::fold`] (the CPU path's folding), the
//! grouped 3x3 convs keep their `group`, and the FPN's top-down path upsamples with `Resize`
//! (nearest, `asymmetric` + `floor`: PyTorch's `nearest` rule; the padded size makes each level
//! exactly twice the next, so this picks the same pixels as ours).
use backbones::{BackboneConfig, FrozenBatchNorm2d};
use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::graph::{attr_i, attr_ints, attr_s, GraphBuilder};
use super::ExportError;

/// One convolution's geometry.
#[derive(Clone, Copy)]
pub struct ConvSpec {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl ConvSpec {
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            cin,
            cout,
            kernel,
            stride,
            padding,
            groups: 1,
        }
    }
}

/// A `Conv` node with weight `[Cout, Cin/G, k, k]` and bias `[Cout]` as initializers
/// named `{name}.weight`, `{name}.bias`.
pub fn conv_node(
    g: &mut GraphBuilder,
    x: &str,
    name: &str,
    spec: ConvSpec,
    weight: &Tensor,
    bias: &Tensor,
) -> Result<String, ExportError> {
    let k = spec.kernel;
    let w = g.init_f32(
        &format!("{name}.weight"),
        &[spec.cout, spec.cin / spec.groups, k, k],
        &weight.flatten_all()?.to_vec1::<f32>()?,
    );
    let b = g.init_f32(
        &format!("{name}.bias"),
        &[spec.cout],
        &bias.flatten_all()?.to_vec1::<f32>()?,
    );
    let (p, s) = (spec.padding as i64, spec.stride as i64);
    Ok(g.node(
        "Conv",
        &[x, &w, &b],
        vec![
            attr_i("group", spec.groups as i64),
            attr_ints("kernel_shape", &[k as i64, k as i64]),
            attr_ints("pads", &[p, p, p, p]),
            attr_ints("strides", &[s, s]),
        ],
    ))
}

/// `bn(conv(x))` with the BN folded: conv weights at `{conv}.weight`, BN at `{bn}.*`.
fn conv_bn(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    x: &str,
    (conv, bn): (&str, &str),
    spec: ConvSpec,
    eps: f64,
) -> Result<String, ExportError> {
    let k = spec.kernel;
    let weight = vb.get(
        (spec.cout, spec.cin / spec.groups, k, k),
        &format!("{conv}.weight"),
    )?;
    let bn = FrozenBatchNorm2d::new(spec.cout, eps, vb.pp(bn))?;
    let (w, b) = bn.fold(&weight)?;
    conv_node(g, x, conv, spec, &w, &b)
}

/// A conv with its own bias (FPN, RPN head): weights at `{name}.weight`, `{name}.bias`.
pub fn conv_bias(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    x: &str,
    name: &str,
    spec: ConvSpec,
) -> Result<String, ExportError> {
    let k = spec.kernel;
    let weight = vb.get((spec.cout, spec.cin, k, k), &format!("{name}.weight"))?;
    let bias = vb.get(spec.cout, &format!("{name}.bias"))?;
    conv_node(g, x, name, spec, &weight, &bias)
}

/// Body + FPN of `images` (`[1, 3, Hp, Wp]`); returns P2..P6. `vb` is the detector's root.
pub fn backbone_with_fpn(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    images: &str,
    config: &BackboneConfig,
) -> Result<Vec<String>, ExportError> {
    let body = &config.body;
    let eps = body.bn_eps;
    let root = "backbone.body";
    let stem = ConvSpec::new(3, body.stem_channels, 7, 2, 3);
    let y = conv_bn(
        g,
        vb,
        images,
        (&format!("{root}.conv1"), &format!("{root}.bn1")),
        stem,
        eps,
    )?;
    let y = g.unary("Relu", &y);
    let mut y = g.node(
        "MaxPool",
        &[&y],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("pads", &[1, 1, 1, 1]),
            attr_ints("strides", &[2, 2]),
        ],
    );
    let mut cin = body.stem_channels;
    let mut stages = Vec::with_capacity(4);
    for s in 0..4 {
        for i in 0..body.layers[s] {
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            let block = format!("{root}.layer{}.{i}", s + 1);
            let (width, cout) = (body.width(s), body.out_channels(s));
            let names = |c: usize| (format!("{block}.conv{c}"), format!("{block}.bn{c}"));
            let (c1, b1) = names(1);
            let t = conv_bn(
                g,
                vb,
                &y,
                (&c1, &b1),
                ConvSpec::new(cin, width, 1, 1, 0),
                eps,
            )?;
            let t = g.unary("Relu", &t);
            let grouped = ConvSpec {
                groups: body.groups,
                ..ConvSpec::new(width, width, 3, stride, 1)
            };
            let (c2, b2) = names(2);
            let t = conv_bn(g, vb, &t, (&c2, &b2), grouped, eps)?;
            let t = g.unary("Relu", &t);
            let (c3, b3) = names(3);
            let t = conv_bn(
                g,
                vb,
                &t,
                (&c3, &b3),
                ConvSpec::new(width, cout, 1, 1, 0),
                eps,
            )?;
            let shortcut = if stride != 1 || cin != cout {
                let ds = (
                    format!("{block}.downsample.0"),
                    format!("{block}.downsample.1"),
                );
                let spec = ConvSpec::new(cin, cout, 1, stride, 0);
                conv_bn(g, vb, &y, (&ds.0, &ds.1), spec, eps)?
            } else {
                y.clone()
            };
            let sum = g.binary("Add", &t, &shortcut);
            y = g.unary("Relu", &sum);
            cin = cout;
        }
        stages.push(y.clone());
    }
    fpn(g, vb, &stages, config)
}

/// torchvision's FPN with `LastLevelMaxPool`: C2..C5 -> P2..P6.
fn fpn(
    g: &mut GraphBuilder,
    vb: &VarBuilder,
    stages: &[String],
    config: &BackboneConfig,
) -> Result<Vec<String>, ExportError> {
    let f = config.fpn_channels;
    let root = "backbone.fpn";
    let inner = |g: &mut GraphBuilder, i: usize| {
        let spec = ConvSpec::new(config.body.out_channels(i), f, 1, 1, 0);
        conv_bias(
            g,
            vb,
            &stages[i],
            &format!("{root}.inner_blocks.{i}.0"),
            spec,
        )
    };
    let layer = |g: &mut GraphBuilder, i: usize, x: &str| {
        conv_bias(
            g,
            vb,
            x,
            &format!("{root}.layer_blocks.{i}.0"),
            ConvSpec::new(f, f, 3, 1, 1),
        )
    };
    let mut last = inner(g, 3)?;
    let mut results = vec![layer(g, 3, &last)?];
    for i in (0..3).rev() {
        let lateral = inner(g, i)?;
        let size = g.unary("Shape", &lateral);
        let up = g.node(
            "Resize",
            &[&last, "", "", &size],
            vec![
                attr_s("mode", "nearest"),
                attr_s("coordinate_transformation_mode", "asymmetric"),
                attr_s("nearest_mode", "floor"),
            ],
        );
        last = g.binary("Add", &lateral, &up);
        results.push(layer(g, i, &last)?);
    }
    results.reverse();
    // LastLevelMaxPool: max_pool2d(kernel 1, stride 2) = every other pixel of P5.
    let p6 = g.node(
        "MaxPool",
        &[&results[3]],
        vec![
            attr_ints("kernel_shape", &[1, 1]),
            attr_ints("strides", &[2, 2]),
        ],
    );
    results.push(p6);
    Ok(results)
}
