//! Box arithmetic on continuous xyxy boxes (no `+1`), as torchvision.ops.boxes defines it.
//!
//! `box_area`, `box_iou` and `clip_boxes_to_image` are written with candle tensor ops, so one
//! implementation serves every device and takes part in autograd; there is no `cpu.rs`/`cuda.rs`
//! here. `remove_small_boxes` is [`large_boxes_mask`] then [`nonzero`](super::nonzero) (whose
//! count is the one scalar a GPU run reads).

use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor, D};

use super::error::{check_dtype, check_same_device, check_shape};

const FLOAT: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16];

fn check_boxes(op: &'static str, arg: &'static str, boxes: &Tensor) -> Result<()> {
    check_same_device(op, &[(arg, boxes)])?;
    check_shape(op, arg, boxes, &[None, Some(4)])?;
    check_dtype(op, arg, boxes, FLOAT, "a float type")?;
    Ok(())
}

/// Area `(x2 - x1) * (y2 - y1)` of each box.
///
/// # Shapes
/// `boxes [N, 4]` → `[N]`
pub fn box_area(boxes: &Tensor) -> Result<Tensor> {
    check_boxes("box_area", "boxes", boxes)?;
    area_unchecked(boxes)
}

fn area_unchecked(boxes: &Tensor) -> Result<Tensor> {
    let w = (boxes.narrow(1, 2, 1)? - boxes.narrow(1, 0, 1)?)?; // [N, 1]
    let h = (boxes.narrow(1, 3, 1)? - boxes.narrow(1, 1, 1)?)?; // [N, 1]
    (w * h)?.squeeze(1)
}

/// Pairwise intersection over union: `iou[i, j] = |a_i ∩ b_j| / |a_i ∪ b_j|`.
///
/// # Shapes
/// `a [N, 4]`, `b [M, 4]` → `[N, M]`
pub fn box_iou(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_boxes("box_iou", "a", a)?;
    check_boxes("box_iou", "b", b)?;
    check_same_device("box_iou", &[("a", a), ("b", b)])?;
    if a.dtype() != b.dtype() {
        return Err(super::OpsError::DType {
            op: "box_iou",
            arg: "b",
            expected: "the dtype of `a`",
            got: b.dtype(),
        }
        .into());
    }
    let (n, m) = (a.dim(0)?, b.dim(0)?);
    let area_a = area_unchecked(a)?.reshape((n, 1))?; // [N, 1]
    let area_b = area_unchecked(b)?.reshape((1, m))?; // [1, M]
    let a3 = a.reshape((n, 1, 4))?; // [N, 1, 4]
    let b3 = b.reshape((1, m, 4))?; // [1, M, 4]
    let lt = a3
        .narrow(D::Minus1, 0, 2)?
        .broadcast_maximum(&b3.narrow(D::Minus1, 0, 2)?)?; // [N, M, 2]
    let rb = a3
        .narrow(D::Minus1, 2, 2)?
        .broadcast_minimum(&b3.narrow(D::Minus1, 2, 2)?)?; // [N, M, 2]
    let wh = (rb - lt)?.relu()?; // [N, M, 2]
    let inter = (wh.narrow(D::Minus1, 0, 1)? * wh.narrow(D::Minus1, 1, 1)?)?.squeeze(D::Minus1)?; // [N, M]
    let union = area_a.broadcast_add(&area_b)?.sub(&inter)?; // [N, M]
    inter.div(&union)
}

/// Clamps x coordinates to `[0, width]` and y coordinates to `[0, height]`.
///
/// # Shapes
/// `boxes [N, 4]` → `[N, 4]`
pub fn clip_boxes_to_image(boxes: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    check_boxes("clip_boxes_to_image", "boxes", boxes)?;
    let (height, width) = (size.0 as f64, size.1 as f64);
    let limits =
        super::transfer::upload(vec![width, height, width, height], (1, 4), boxes.device())?
            .to_dtype(boxes.dtype())?; // [1, 4]
    let zero = limits.zeros_like()?; // [1, 4]
    boxes.broadcast_maximum(&zero)?.broadcast_minimum(&limits)
}

/// Per box, 1 when its width and height are both `>= min_size`, else 0.
///
/// `min_size` is compared in the boxes' precision, as torchvision's tensor-scalar comparison
/// does.
///
/// # Shapes
/// `boxes [N, 4]` → U8 `[N]`
pub fn large_boxes_mask(boxes: &Tensor, min_size: f64) -> Result<Tensor> {
    check_boxes("remove_small_boxes", "boxes", boxes)?;
    if boxes.dim(0)? == 0 {
        return Tensor::zeros(0, DType::U8, boxes.device());
    }
    let w = boxes.narrow(1, 2, 1)? - boxes.narrow(1, 0, 1)?; // [N, 1]
    let h = boxes.narrow(1, 3, 1)? - boxes.narrow(1, 1, 1)?; // [N, 1]
    let w = super::compare_scalar(&w?, CmpOp::Ge, min_size)?;
    let h = super::compare_scalar(&h?, CmpOp::Ge, min_size)?;
    (w * h)?.squeeze(1)
}

/// Indices of the boxes whose width and height are both `>= min_size`.
///
/// # Shapes
/// `boxes [N, 4]` → keep indices U32 `[K]`, ascending
pub fn remove_small_boxes(boxes: &Tensor, min_size: f64) -> Result<Tensor> {
    super::nonzero(&large_boxes_mask(boxes, min_size)?)
}
