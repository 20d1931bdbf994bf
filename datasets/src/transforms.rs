//! torchvision's `GeneralizedRCNNTransform`, reproduced number for number: normalise with the
//! ImageNet mean/std, resize bilinearly so the short side is `min_size` unless the long side
//! would pass `max_size`, and pad the batch with zeros to a multiple of 32. Plus the training
//! augmentation of torchvision's detection reference: a horizontal flip of image and boxes.
//!
//! torchvision's rules, as read in `torchvision/models/detection/transform.py` and
//! `torch.nn.functional.interpolate`:
//! - scale = min(min_size / short, max_size / long) in f64 (Python floats), and the output
//!   size is floor(side * scale) (`recompute_scale_factor=True`);
//! - with the scale recomputed, the bilinear kernel (`align_corners=False`) samples output
//!   pixel `i` at source coordinate `max((in/out) * (i + 0.5) - 0.5, 0)` in f32, using pixels
//!   `floor(src)` and `floor(src) + 1` (clamped to the last pixel);
//! - normalisation comes before the resize (on `u8 / 255` in f32); we keep that order, through
//!   a 256-entry table per channel, so the values match to f32 rounding;
//! - boxes are multiplied by `new / old` per axis, ratios in f32.
//!
//! The resize is separable: each output row is a blend of two input rows, each output column
//! of two input columns, with index/weight tables computed once per image. Input rows are
//! resized horizontally once each, on demand, then blended vertically (which vectorises).
use serde::{Deserialize, Serialize};

use crate::image::RgbImage;

/// ImageNet channel means (RGB), torchvision's `image_mean`.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB), torchvision's `image_std`.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// detectron2's multi-scale training sizes of its 3x recipes (`INPUT.MIN_SIZE_TRAIN` of
/// `*_3x.yaml`: 640 to 800 in steps of 32); evaluation uses the last, 800.
pub const MULTI_SCALE_MIN_SIZES: [usize; 6] = [640, 672, 704, 736, 768, 800];

/// The preprocessing settings, torchvision's `GeneralizedRCNNTransform` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformConfig {
    /// Short side after resizing, in pixels. Training picks one per image at random
    /// (multi-scale); evaluation uses the last (torchvision's `min_size` tuple).
    pub min_size: Vec<usize>,
    /// Upper bound on the long side after resizing, in pixels (`max_size`).
    pub max_size: usize,
    /// Per-channel mean subtracted from `u8 / 255` (`image_mean`).
    pub image_mean: [f32; 3],
    /// Per-channel divisor (`image_std`).
    pub image_std: [f32; 3],
    /// The padded batch's height and width are multiples of this (`size_divisible`).
    pub size_divisible: usize,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig {
            min_size: vec![800],
            max_size: 1333,
            image_mean: IMAGENET_MEAN,
            image_std: IMAGENET_STD,
            size_divisible: 32,
        }
    }
}

/// The output size `(height, width)` of torchvision's resize for an image of `height x width`.
/// Never below 1 pixel per side (torch would fail on such an image instead).
pub fn resized_size(
    height: usize,
    width: usize,
    min_size: usize,
    max_size: usize,
) -> (usize, usize) {
    let short = height.min(width).max(1) as f64;
    let long = height.max(width).max(1) as f64;
    let scale = (min_size as f64 / short).min(max_size as f64 / long);
    let side = |s: usize| ((s as f64 * scale).floor() as usize).max(1);
    (side(height), side(width))
}

/// Scales xyxy boxes from an `original` `(height, width)` image to a `new` one, as
/// torchvision's `resize_boxes` (ratios `new / old` in f32).
pub fn resize_boxes(
    boxes: &[[f32; 4]],
    original: (usize, usize),
    new: (usize, usize),
) -> Vec<[f32; 4]> {
    let ratio_h = new.0 as f32 / original.0 as f32;
    let ratio_w = new.1 as f32 / original.1 as f32;
    boxes
        .iter()
        .map(|b| {
            [
                b[0] * ratio_w,
                b[1] * ratio_h,
                b[2] * ratio_w,
                b[3] * ratio_h,
            ]
        })
        .collect()
}

/// Mirrors xyxy boxes in an image `width` pixels wide (`x1' = W - x2`, `x2' = W - x1`), as
/// torchvision's detection reference `RandomHorizontalFlip`.
pub fn flip_boxes_horizontally(boxes: &[[f32; 4]], width: usize) -> Vec<[f32; 4]> {
    let w = width as f32;
    boxes
        .iter()
        .map(|b| [w - b[2], b[1], w - b[0], b[3]])
        .collect()
}

/// The padded batch size `(height, width)` for images of the given sizes: the largest of
/// each, rounded up to a multiple of `size_divisible`.
pub fn padded_size(sizes: &[(usize, usize)], size_divisible: usize) -> (usize, usize) {
    let d = size_divisible.max(1);
    let h = sizes.iter().map(|s| s.0).max().unwrap_or(0);
    let w = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    (h.div_ceil(d) * d, w.div_ceil(d) * d)
}

/// One axis of a bilinear resize: output pixel `i` = `w0[i] * in[i0[i]] + w1[i] * in[i1[i]]`.
#[derive(Debug, Clone)]
struct AxisTable {
    index0: Vec<usize>,
    index1: Vec<usize>,
    weight0: Vec<f32>,
    weight1: Vec<f32>,
}

impl AxisTable {
    /// PyTorch's `compute_source_index_and_lambda` (align_corners=False, scale recomputed as
    /// in/out). `flip` reads the input mirrored, which equals flipping the image first.
    fn linear(input: usize, output: usize, flip: bool) -> Self {
        let mut t = AxisTable {
            index0: Vec::with_capacity(output),
            index1: Vec::with_capacity(output),
            weight0: Vec::with_capacity(output),
            weight1: Vec::with_capacity(output),
        };
        let scale = input as f32 / output as f32;
        for i in 0..output {
            let (i0, i1, lambda1) = if input == output {
                (i, i, 0.0f32)
            } else {
                let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(input - 1);
                let lambda1 = (src - i0 as f32).clamp(0.0, 1.0);
                (i0, if i0 < input - 1 { i0 + 1 } else { i0 }, lambda1)
            };
            let (i0, i1) = if flip {
                (input - 1 - i0, input - 1 - i1)
            } else {
                (i0, i1)
            };
            t.index0.push(i0);
            t.index1.push(i1);
            t.weight0.push(1.0 - lambda1);
            t.weight1.push(lambda1);
        }
        t
    }
}

/// Normalises `image` and resizes it to `out_h x out_w` (bilinear, torchvision's rules),
/// optionally mirrored left-right, writing channel planes into `dst`.
///
/// # Shapes
/// `image`: `[H, W, 3]` u8 → `dst`: `[3, dst_h, dst_w]` f32 with the image in the top-left
/// `out_h x out_w` corner; the rest of `dst` is left untouched (zeros in a fresh batch).
/// Requires `out_h <= dst_h`, `out_w <= dst_w`, `dst.len() == 3 * dst_h * dst_w`.
#[allow(clippy::too_many_arguments)]
pub fn resize_normalize_into(
    image: &RgbImage,
    (out_h, out_w): (usize, usize),
    flip: bool,
    mean: [f32; 3],
    std: [f32; 3],
    dst: &mut [f32],
    (dst_h, dst_w): (usize, usize),
) {
    assert!(out_h <= dst_h && out_w <= dst_w && dst.len() == 3 * dst_h * dst_w);
    let (in_h, in_w) = (image.height, image.width);
    if in_h == 0 || in_w == 0 || out_h == 0 || out_w == 0 {
        return;
    }
    // u8 -> (v / 255 - mean) / std, exactly torchvision's f32 ops.
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (v, entry) in table.iter_mut().enumerate() {
            *entry = (v as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    let cols = AxisTable::linear(in_w, out_w, flip);
    let rows = AxisTable::linear(in_h, out_h, false);
    // Output rows read input rows in increasing order, so each horizontally resized input row
    // is computed once, on demand, into one of two slots: the working set stays in cache.
    let mut slot_row = [usize::MAX; 2];
    let mut slots = [vec![0f32; 3 * out_w], vec![0f32; 3 * out_w]];
    let mut planar = vec![0f32; 3 * in_w];
    let dst_plane = dst_h * dst_w;
    for y in 0..out_h {
        let (a, b) = (rows.index0[y], rows.index1[y]);
        for r in [a, b] {
            if slot_row.contains(&r) {
                continue;
            }
            let victim = usize::from(slot_row[0] == a || slot_row[0] == b);
            let pixels = &image.pixels[r * in_w * 3..(r + 1) * in_w * 3];
            horizontal_row(pixels, &lut, &cols, &mut planar, &mut slots[victim]);
            slot_row[victim] = r;
        }
        let r0 = &slots[usize::from(slot_row[0] != a)];
        let r1 = &slots[usize::from(slot_row[0] != b)];
        let (w0, w1) = (rows.weight0[y], rows.weight1[y]);
        for c in 0..3 {
            let out = &mut dst[c * dst_plane + y * dst_w..][..out_w];
            let (r0, r1) = (&r0[c * out_w..][..out_w], &r1[c * out_w..][..out_w]);
            for ((o, &p), &q) in out.iter_mut().zip(r0).zip(r1) {
                *o = w0 * p + w1 * q;
            }
        }
    }
}

/// Normalises one interleaved RGB row through `lut` into `planar` (`[3, in_w]`), then blends
/// column pairs into `out` (`[3, out_w]`).
fn horizontal_row(
    pixels: &[u8],
    lut: &[[f32; 256]; 3],
    cols: &AxisTable,
    planar: &mut [f32],
    out: &mut [f32],
) {
    let in_w = pixels.len() / 3;
    let (p0, rest) = planar.split_at_mut(in_w);
    let (p1, p2) = rest.split_at_mut(in_w);
    for (x, px) in pixels.chunks_exact(3).enumerate() {
        p0[x] = lut[0][px[0] as usize];
        p1[x] = lut[1][px[1] as usize];
        p2[x] = lut[2][px[2] as usize];
    }
    let out_w = cols.index0.len();
    for (c, plane) in [&*p0, &*p1, &*p2].into_iter().enumerate() {
        let out = &mut out[c * out_w..][..out_w];
        for (x, o) in out.iter_mut().enumerate() {
            *o = cols.weight0[x] * plane[cols.index0[x]] + cols.weight1[x] * plane[cols.index1[x]];
        }
    }
}

/// One image after the transform, not yet padded into a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformedImage {
    /// `[3, height, width]` normalised pixels.
    pub data: Vec<f32>,
    /// Size after resizing `(height, width)`.
    pub size: (usize, usize),
    /// Size before resizing `(height, width)`.
    pub original_size: (usize, usize),
    /// xyxy boxes in resized pixels (flipped too when the image was).
    pub boxes: Vec<[f32; 4]>,
}

/// Applies the whole per-image transform: optional flip, normalise + resize to `min_size`
/// (bounded by `config.max_size`), boxes scaled (and flipped) with the image.
pub fn transform_image(
    config: &TransformConfig,
    image: &RgbImage,
    boxes: &[[f32; 4]],
    min_size: usize,
    flip: bool,
) -> TransformedImage {
    let original_size = (image.height, image.width);
    let size = resized_size(image.height, image.width, min_size, config.max_size);
    let mut data = vec![0f32; 3 * size.0 * size.1];
    resize_normalize_into(
        image,
        size,
        flip,
        config.image_mean,
        config.image_std,
        &mut data,
        size,
    );
    let flipped;
    let boxes = if flip {
        flipped = flip_boxes_horizontally(boxes, image.width);
        &flipped[..]
    } else {
        boxes
    };
    TransformedImage {
        data,
        size,
        original_size,
        boxes: resize_boxes(boxes, original_size, size),
    }
}

/// Pads transformed images with zeros into one `[B, 3, H, W]` buffer, `H` and `W` multiples
/// of `size_divisible` (torchvision's `batch_images`). Returns the buffer and `(H, W)`.
pub fn batch_images(
    images: &[TransformedImage],
    size_divisible: usize,
) -> (Vec<f32>, (usize, usize)) {
    let sizes: Vec<_> = images.iter().map(|t| t.size).collect();
    let (ph, pw) = padded_size(&sizes, size_divisible);
    let mut out = vec![0f32; images.len() * 3 * ph * pw];
    for (b, t) in images.iter().enumerate() {
        let (h, w) = t.size;
        for c in 0..3 {
            for y in 0..h {
                let src = &t.data[(c * h + y) * w..][..w];
                out[((b * 3 + c) * ph + y) * pw..][..w].copy_from_slice(src);
            }
        }
    }
    (out, (ph, pw))
}

#[cfg(test)]
mod tests;
