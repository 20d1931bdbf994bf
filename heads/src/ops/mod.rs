//! Detection ops with torchvision.ops semantics: box arithmetic, NMS, RoIAlign and the FPN
//! multi-scale RoIAlign.
//!
//! Boxes are f32, continuous `(x1, y1, x2, y2)` coordinates with no `+1` (torchvision's
//! convention). Every entry point validates its inputs first (shape, dtype, one device) and
//! fails with an [`OpsError`] naming the op, the argument, and expected vs got, wrapped in a
//! `candle_core::Error` so the message survives. Each op has one implementation per device:
//! `cpu.rs` (host loops, parallel with rayon where it pays) and `cuda.rs` (kernels from
//! `heads/kernels/*.cu`, built with the `cuda` feature). A CUDA tensor in a build without
//! `cuda`, or a Metal tensor, is an explicit error, never a silent fallback.
//!
//! - [`box_area`], [`box_iou`], [`clip_boxes_to_image`], [`large_boxes_mask`],
//!   [`remove_small_boxes`]
//! - [`nms`], [`batched_nms`]: kept indices (U32) by decreasing score
//! - [`roi_align`]: differentiable w.r.t. the features (forward and backward as candle ops)
//! - [`MultiScaleRoiAlign`]: FPN level assignment, then RoIAlign from each RoI's level (on the
//!   CPU straight from the NCHW levels into the output rows)
//! - [`nonzero`], [`top_k`]: data-dependent indices computed on the device
//! - [`transfer`]: the counted door for every host read and upload of the step path
//!
//! This module depends on nothing else in `heads`.

mod boxes;
#[cfg(feature = "cuda")]
mod cuda_util;
mod error;
mod multi_scale;
mod nms;
mod nonzero;
mod roi_align;
mod top_k;
pub mod transfer;

pub use boxes::{box_area, box_iou, clip_boxes_to_image, large_boxes_mask, remove_small_boxes};
pub use error::OpsError;
pub use multi_scale::MultiScaleRoiAlign;
pub use nms::{batched_nms, nms};
pub use nonzero::nonzero;
pub use roi_align::roi_align;
pub use top_k::top_k;

use candle_core::op::CmpOp;
use candle_core::{CpuStorage, Layout, Result, Tensor, WithDType};

/// `t op value` elementwise (U8), with `value` made on `t`'s device in `t`'s dtype (candle's
/// comparisons with a host scalar upload it at every call).
pub fn compare_scalar(t: &Tensor, op: CmpOp, value: f64) -> Result<Tensor> {
    let v = Tensor::full(value, (), t.device())?
        .to_dtype(t.dtype())?
        .broadcast_as(t.shape())?;
    t.cmp(&v, op)
}

/// A CPU kernel's input read in place: the contiguous data of `s` under `l` as `&[T]` (a
/// wrong dtype is candle's error; `op` names the op when the layout is not contiguous).
pub(crate) fn cpu_slice<'a, T: WithDType>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("{op}: expected a contiguous tensor"),
    }
}
