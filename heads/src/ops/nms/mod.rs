//! Non-maximum suppression: `nms` and the class-aware `batched_nms`, torchvision's results.
//!
//! The kept indices come back sorted by decreasing score, as U32 on the input's device.
//! The CPU path reads boxes and scores (`"nms: *"` reads in [`transfer`]: on the CPU the host is
//! the device); the CUDA path stays on the device (sort, IoU bitmask, greedy walk) and reads
//! only the kept count (`nonzero`). NaN scores sort first (as torch's descending sort puts
//! them) and never panic; tied scores keep the lower index first (torch's `stable=True` order: torchvision's own CPU sort is unstable
//! and resolves ties differently on AVX2 and AVX-512 machines).

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use candle_core::{DType, Device, Result, Tensor};

use super::error::{check_dtype, check_same_device, check_shape};
use super::transfer;

fn check_boxes_scores(op: &'static str, boxes: &Tensor, scores: &Tensor) -> Result<usize> {
    check_same_device(op, &[("boxes", boxes), ("scores", scores)])?;
    check_shape(op, "boxes", boxes, &[None, Some(4)])?;
    let n = boxes.dim(0)?;
    check_shape(op, "scores", scores, &[Some(n)])?;
    check_dtype(op, "boxes", boxes, &[DType::F32], "f32")?;
    check_dtype(op, "scores", scores, &[DType::F32], "f32")?;
    Ok(n)
}

fn indices(keep: Vec<u32>, device: &Device) -> Result<Tensor> {
    let k = keep.len();
    transfer::upload(keep, k, device)
}

/// Greedy NMS: repeatedly keeps the highest-scoring box and drops every remaining box whose
/// IoU with it is `> iou_threshold`.
///
/// # Shapes
/// `boxes [N, 4]` f32 xyxy, `scores [N]` f32 → kept indices U32 `[K]` by decreasing score
pub fn nms(boxes: &Tensor, scores: &Tensor, iou_threshold: f64) -> Result<Tensor> {
    check_boxes_scores("nms", boxes, scores)?;
    match boxes.device() {
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => cuda::nms(boxes, scores, iou_threshold),
        _ => {
            let b: Vec<f32> = transfer::read("nms: boxes", boxes)?;
            let s: Vec<f32> = transfer::read("nms: scores", scores)?;
            indices(cpu::nms(&b, &s, iou_threshold), boxes.device())
        }
    }
}

/// NMS within each class: boxes of different `idxs` never suppress each other.
///
/// On the CPU this follows torchvision's own switch: up to 1,000 boxes one NMS over boxes
/// shifted by `class * (max_coordinate + 1)`; above, NMS per class. Both keep the same set;
/// following the switch makes even the float rounding of the shifted boxes identical. On
/// CUDA it always uses the shift and the GPU NMS kernel.
///
/// # Shapes
/// `boxes [N, 4]` f32, `scores [N]` f32, `idxs [N]` U32 or I64 → kept indices U32 `[K]` by
/// decreasing score
pub fn batched_nms(
    boxes: &Tensor,
    scores: &Tensor,
    idxs: &Tensor,
    iou_threshold: f64,
) -> Result<Tensor> {
    const OP: &str = "batched_nms";
    let n = check_boxes_scores(OP, boxes, scores)?;
    check_same_device(OP, &[("boxes", boxes), ("idxs", idxs)])?;
    check_shape(OP, "idxs", idxs, &[Some(n)])?;
    check_dtype(OP, "idxs", idxs, &[DType::U32, DType::I64], "u32 or i64")?;
    if n == 0 {
        return indices(Vec::new(), boxes.device());
    }
    match boxes.device() {
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => {
            // Shift each class into its own region: offsets = idxs * (max_coordinate + 1).
            let max = boxes.flatten_all()?.max(0)?; // scalar
            let step = (max + 1.0)?;
            let offsets = idxs
                .to_dtype(DType::F32)?
                .broadcast_mul(&step)?
                .unsqueeze(1)?; // [N, 1]
            let shifted = boxes.broadcast_add(&offsets)?; // [N, 4]
            cuda::nms(&shifted, scores, iou_threshold)
        }
        _ => {
            let b: Vec<f32> = transfer::read("nms: boxes", boxes)?;
            let s: Vec<f32> = transfer::read("nms: scores", scores)?;
            let c: Vec<i64> = transfer::read("nms: classes", &idxs.to_dtype(DType::I64)?)?;
            indices(cpu::batched_nms(&b, &s, &c, iou_threshold), boxes.device())
        }
    }
}
