//! `detect export`: the whole detector as one ONNX graph.
//!
//! ```text
//! image [1, 3, H, W] in [0, 1]
//!   → transform (resize to the eval size, normalise, pad)      transform.rs
//!   → backbone + FPN (FrozenBatchNorm folded into the convs)   backbone.rs
//!   → RPN (TopK per level, decode, clip, filters, NMS)         rpn.rs, boxes.rs
//!   → MultiScaleRoIAlign + box head                           roi_heads.rs
//!   → postprocess (softmax, decode, NMS, scale back, ids)     postprocess.rs
//! boxes [K, 4] (input pixels), scores [K], labels [K] (category ids)
//! ```
//!
//! [`GraphBuilder`](graph::GraphBuilder) collects nodes and initializers; [`proto`] holds the
//! ONNX messages, encoded with `prost`. The weights are read by their torchvision state-dict
//! names through [`backbones::CheckedWeights`], and a key the graph did not use is an error, as
//! when loading for inference. The same model always gives the same bytes.
pub mod backbone;
pub mod boxes;
pub mod graph;
pub mod postprocess;
pub mod proto;
pub mod roi_heads;
pub mod rpn;
pub mod transform;

use backbones::{CheckedWeights, WeightMap};
use candle_core::{DType, Device};
use datasets::coco::CategoryMap;
use prost::Message;
use serde::Serialize;

use crate::model::config::DetectorConfig;
use graph::GraphBuilder;
use proto::{
    data_type, Dimension, DimensionValue, GraphProto, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

/// Opsets the exported graph is written for and checked in ONNX Runtime with.
pub const SUPPORTED_OPSETS: [i64; 2] = [16, 17];
/// The default `--opset`.
pub const DEFAULT_OPSET: i64 = 17;
/// IR version matching opsets 16-17 (ONNX 1.11-1.12).
const IR_VERSION: i64 = 8;

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the weights: {0}")]
    Weights(#[from] candle_core::Error),
    #[error("opset {got} is not supported; supported: {SUPPORTED_OPSETS:?}")]
    Opset { got: i64 },
    #[error("{} weights the exported graph does not use: {}", .0.len(), .0.join(", "))]
    UnusedWeights(Vec<String>),
    #[error("cannot export this model: {0}")]
    Unsupported(String),
}

/// The transform settings written into `metadata_props` (`transform`).
#[derive(Serialize)]
struct TransformMeta<'a> {
    min_size: usize,
    max_size: usize,
    image_mean: [f32; 3],
    image_std: [f32; 3],
    size_divisible: usize,
    input: &'a str,
}

/// The ONNX bytes of the detector `config` with `weights` (torchvision state-dict names) and
/// its categories.
pub fn export_detector(
    config: &DetectorConfig,
    labels: &CategoryMap,
    weights: WeightMap,
    opset: i64,
) -> Result<Vec<u8>, ExportError> {
    if !SUPPORTED_OPSETS.contains(&opset) {
        return Err(ExportError::Opset { got: opset });
    }
    let min_size = *config
        .transform
        .min_size
        .last()
        .ok_or_else(|| ExportError::Unsupported("the transform has no min_size".into()))?;
    let checked = CheckedWeights::new(weights, &[]);
    let vb = checked.var_builder(DType::F32, &Device::Cpu);
    let mut g = GraphBuilder::default();
    let t = transform::transform(&mut g, "image", &config.transform, min_size);
    let features = backbone::backbone_with_fpn(&mut g, &vb, &t.images, &config.backbone)?;
    let channels = config.backbone.fpn_channels;
    let proposals = rpn::proposals(
        &mut g,
        &vb,
        &features,
        &config.rpn,
        channels,
        &t.padded_hw,
        &t.resized_hw,
    )?;
    let (logits, deltas) = roi_heads::box_predictions(
        &mut g,
        &vb,
        &features,
        &proposals,
        &t.resized_hw,
        &config.roi_heads,
        channels,
        config.num_classes,
    )?;
    let category_ids: Vec<i64> = (0..config.num_classes)
        .map(|label| labels.category(label).id as i64)
        .collect();
    postprocess::postprocess(
        &mut g,
        &logits,
        &deltas,
        &proposals,
        &t.resized_hw,
        &t.ratios,
        &config.roi_heads,
        &category_ids,
    );
    let mut unused = checked.unused_keys();
    unused.sort();
    if !unused.is_empty() {
        return Err(ExportError::UnusedWeights(unused));
    }
    let names: Vec<String> = (0..config.num_classes)
        .map(|label| labels.category(label).name)
        .collect();
    let meta = TransformMeta {
        min_size,
        max_size: config.transform.max_size,
        image_mean: config.transform.image_mean,
        image_std: config.transform.image_std,
        size_divisible: config.transform.size_divisible,
        input: "RGB float in [0, 1], [1, 3, H, W]; resized, normalised and padded in the graph",
    };
    let metadata = vec![
        entry("backbone", &config.backbone_name),
        entry("category_ids", &json(&category_ids)),
        entry("class_names", &json(&names)),
        entry("transform", &json(&meta)),
    ];
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "detect".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "Faster R-CNN {} exported by `detect export`",
            config.backbone_name
        ),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "faster_rcnn".into(),
            initializer: g.initializers,
            input: vec![value_info(
                "image",
                data_type::FLOAT,
                &[Fixed(1), Fixed(3), Named("height"), Named("width")],
            )],
            output: vec![
                value_info("boxes", data_type::FLOAT, &[Named("detections"), Fixed(4)]),
                value_info("scores", data_type::FLOAT, &[Named("detections")]),
                value_info("labels", data_type::INT64, &[Named("detections")]),
            ],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        metadata_props: metadata,
    };
    Ok(model.encode_to_vec())
}

/// A metadata value as JSON (plain data: serialising cannot fail).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

/// One dimension of a graph input or output.
enum Dim {
    Fixed(i64),
    Named(&'static str),
}
use Dim::{Fixed, Named};

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Fixed(n) => DimensionValue::DimValue(*n),
                Named(s) => DimensionValue::DimParam(s.to_string()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}
