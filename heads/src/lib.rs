//! The two detection stages of Faster R-CNN on top of FPN features, and the ops they stand on.
//!
//! - [`ops`]: `box_iou`, `nms`, `batched_nms`, `roi_align` (forward and backward, in autograd),
//!   `MultiScaleRoiAlign`, `nonzero`, `top_k`; CPU kernels and, with the `cuda` feature, CUDA
//!   kernels; and `ops::transfer`, the counter every host read and upload of the step goes
//!   through. It depends on nothing else in this crate.
//! - [`anchors`] → [`rpn`]: the RPN head scores every anchor of P2..P6; [`box_coder`] decodes the
//!   deltas; proposals are top-n per level, clipped, NMS'd (`Rpn::detect`). In training,
//!   [`matcher`] labels anchors against the ground truth, [`sampler`] draws a balanced batch and
//!   [`losses`] gives the objectness and box-regression losses (`Rpn::losses`).
//! - [`roi_heads`]: proposals are pooled by `MultiScaleRoiAlign`, run through the two-layer MLP
//!   and the predictor, then post-processed into `Detections` (`RoiHeads::detect`), or matched,
//!   sampled and scored into the classifier and box losses (`RoiHeads::losses`).
//!
//! A step stays on the device except for a few counts and scalars (see [`ops::transfer`] and
//! the root crate's `tests/step_transfers.rs`); on the CPU, NMS reads its candidates (the host
//! is the device there).
//!
//! Weights are read through a `VarBuilder` under torchvision's names (`rpn.head.*`,
//! `roi_heads.box_head.*`, `roi_heads.box_predictor.*`); defaults are torchvision's `FasterRCNN`.
//!
//! Mixed precision (`backbones::autocast`): the box head's matmuls run in the autocast dtype;
//! head outputs and pooled features are [`widened`] back to f32 before anything else.
pub mod ops;

pub mod anchors;
pub mod box_coder;
pub mod losses;
pub mod matcher;
pub mod roi_heads;
pub mod rpn;
pub mod sampler;

/// `t` in f32 when it is in a reduced precision (bf16, f16: what autocast ops answer), else
/// unchanged (f32 and f64 stay as they are).
pub fn widened(t: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
    use candle_core::DType;
    match t.dtype() {
        DType::BF16 | DType::F16 => t.to_dtype(DType::F32),
        _ => Ok(t.clone()),
    }
}
