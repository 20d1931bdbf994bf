//! The transform inside the graph (torchvision's `GeneralizedRCNNTransform` at evaluation):
//! resize to the eval size, normalise, pad to the size divisor.
//!
//! The output size follows `datasets::transforms::resized_size`: scale = min(min_size /
//! short, max_size / long) in f64, size = max(floor(side * scale), 1) (torchvision's
//! `recompute_scale_factor=True`), and ONNX `Resize` (linear, `half_pixel`) with those sizes
//! samples at `(i + 0.5) * in / out - 0.5`, clamped to the image: the bilinear kernel of
//! `interpolate(align_corners=False)`. We normalise after resizing (ours normalises before, on
//! the u8 values): the two orders agree up to f32 rounding, since the resize is an affine
//! blend whose weights sum to one.
use super::graph::{attr_s, GraphBuilder};
use super::proto::data_type;
use datasets::transforms::TransformConfig;

/// ONNX's `DOUBLE` element type.
const DOUBLE: i32 = 11;

/// The values the later stages need from the transform.
pub struct Transformed {
    /// `[1, 3, Hp, Wp]` normalised, padded image.
    pub images: String,
    /// `[2]` i64 `(Hp, Wp)`.
    pub padded_hw: String,
    /// `[2]` i64 `(h, w)` after resizing, before padding.
    pub resized_hw: String,
    /// `[2]` f32 `(original / resized)` per axis `(y, x)`, torchvision's `postprocess` ratios.
    pub ratios: String,
}

/// Adds the transform of `image` (`[1, 3, H, W]` in [0, 1]).
///
/// `min_size` is the eval size (the last of `config.min_size`).
pub fn transform(
    g: &mut GraphBuilder,
    image: &str,
    config: &TransformConfig,
    min_size: usize,
) -> Transformed {
    let shape = g.unary("Shape", image);
    let hw = g.slice(&shape, 0, 2, 4); // [2] (H, W)
    let hw_d = g.cast(&hw, DOUBLE);
    let (i0, i1) = (g.int(0), g.int(1));
    let h = g.gather(&hw_d, &i0, 0);
    let w = g.gather(&hw_d, &i1, 0);
    let short = g.binary("Min", &h, &w);
    let long = g.binary("Max", &h, &w);
    let min_d = double(g, min_size as f64);
    let max_d = double(g, config.max_size as f64);
    let by_short = g.binary("Div", &min_d, &short);
    let by_long = g.binary("Div", &max_d, &long);
    let scale = g.binary("Min", &by_short, &by_long);
    let scaled = g.binary("Mul", &hw_d, &scale);
    let floored = g.unary("Floor", &scaled);
    let one = double(g, 1.0);
    let at_least_one = g.binary("Max", &floored, &one);
    let resized_hw = g.cast(&at_least_one, data_type::INT64); // [2]

    let batch_channels = g.ints(&[1, 3]);
    let sizes = g.concat(&[&batch_channels, &resized_hw], 0);
    let resized = g.node(
        "Resize",
        &[image, "", "", &sizes],
        vec![
            attr_s("mode", "linear"),
            attr_s("coordinate_transformation_mode", "half_pixel"),
        ],
    ); // [1, 3, h, w]
    let mean = g.fresh("image_mean");
    g.init_f32(&mean, &[1, 3, 1, 1], &config.image_mean);
    let std = g.fresh("image_std");
    g.init_f32(&std, &[1, 3, 1, 1], &config.image_std);
    let centred = g.binary("Sub", &resized, &mean);
    let normalised = g.binary("Div", &centred, &std);

    // Pad bottom/right with zeros to multiples of `size_divisible`.
    let d = config.size_divisible.max(1) as i64;
    let (d_minus_1, d_t) = (g.ints(&[d - 1, d - 1]), g.ints(&[d, d]));
    let grown = g.binary("Add", &resized_hw, &d_minus_1);
    let blocks = g.binary("Div", &grown, &d_t); // integer division
    let padded_hw = g.binary("Mul", &blocks, &d_t);
    let extra = g.binary("Sub", &padded_hw, &resized_hw);
    let zeros = g.ints(&[0, 0, 0, 0, 0, 0]);
    let pads = g.concat(&[&zeros, &extra], 0); // [8]
    let images = g.node("Pad", &[&normalised, &pads], vec![]);

    let original_f = g.cast(&hw, data_type::FLOAT);
    let resized_f = g.cast(&resized_hw, data_type::FLOAT);
    let ratios = g.binary("Div", &original_f, &resized_f);
    Transformed {
        images,
        padded_hw,
        resized_hw,
        ratios,
    }
}

/// A scalar f64 constant.
fn double(g: &mut GraphBuilder, value: f64) -> String {
    let name = g.fresh("const_f64");
    g.initializers.push(super::proto::TensorProto {
        dims: vec![],
        data_type: DOUBLE,
        name: name.clone(),
        raw_data: value.to_le_bytes().to_vec(),
    });
    name
}
