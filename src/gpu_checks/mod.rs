//! CUDA-against-CPU checks, shared by `detect doctor` (a few-second self-check) and the hidden
//! `detect parity` (every check; what `scripts/gpu-run.sh` runs on the GPU machine).
//!
//! Every check runs the same computation on the CPU and on the CUDA device, from the same
//! inputs and weights, with TF32 off (`backbones::conv::set_allow_tf32(false)`), and compares
//! with the limits of the parity definition (issue 11): ops 1e-5 absolute; backbone/FPN
//! `max|Δ| / max|ref| <= 1e-3` per level; detections the same count, labels and order, boxes
//! 1e-2 px, scores 1e-4; training-step losses 1e-3 relative, gradients `max|Δ| / max|ref|`
//! 1e-3 per parameter tensor; the backbone under `--precision bf16` on both devices
//! [`backbone::BF16_BACKBONE_LIMIT`]. The checks compile in every build (the device is a
//! parameter); without CUDA there is no device to pass.
pub mod backbone;
pub mod compare;
pub mod model;
pub mod ops;
pub mod versions;

use std::path::Path;

use candle_core::Device;
pub use compare::Check;

/// The first CUDA device, or why there is none ("no GPU: ..." / "built without CUDA").
pub fn cuda_device() -> Result<Device, String> {
    if !cfg!(feature = "cuda") {
        return Err("this detect was built without CUDA support (rebuild with `--features cuda`, see README)".into());
    }
    Device::new_cuda(0).map_err(|e| {
        let e = crate::weights::pth::without_backtrace(e);
        format!("no GPU: CUDA device 0 is not available ({e})")
    })
}

/// `detect doctor`'s self-check, on generated data (no files needed): convolution forward,
/// dX and dW (2 shapes), NMS and batched NMS (4000 boxes), RoIAlign forward and gradient.
pub fn quick(cuda: &Device) -> Vec<Check> {
    let _fp32 = Fp32::on();
    [
        ops::conv(cuda, true),
        ops::nms_random(cuda),
        ops::roi_align_random(cuda),
    ]
    .concat()
}

/// Every check (`detect parity`), in order: ops, backbone+FPN, whole model, training step.
/// `progress` sees each group's checks as they finish.
pub fn all(root: &Path, cuda: &Device, mut progress: impl FnMut(&[Check])) -> Vec<Check> {
    let _fp32 = Fp32::on();
    let groups: [&dyn Fn() -> Vec<Check>; 14] = [
        &|| ops::upload_round_trip(cuda),
        &|| ops::conv(cuda, false),
        &|| ops::nms(root, cuda),
        &|| ops::nms_random(cuda),
        &|| ops::nonzero_top_k_random(cuda),
        &|| ops::roi_align(root, cuda),
        &|| ops::roi_align_random(cuda),
        &|| ops::multi_scale(root, cuda),
        &|| ops::boxes(root, cuda),
        &|| backbone::fixture_backbone(root, cuda),
        &|| backbone::resnext50(cuda),
        &|| backbone::resnext50_bf16(cuda),
        &|| model::detections(root, cuda),
        &|| model::training_step(root, cuda),
    ];
    let mut out = Vec::new();
    for g in groups {
        let checks = g();
        progress(&checks);
        out.extend(checks);
    }
    out
}

/// TF32 off for the guard's lifetime (parity is defined in full f32), then restored.
struct Fp32(bool);

impl Fp32 {
    fn on() -> Self {
        let before = backbones::conv::allow_tf32();
        backbones::conv::set_allow_tf32(false);
        Self(before)
    }
}

impl Drop for Fp32 {
    fn drop(&mut self) {
        backbones::conv::set_allow_tf32(self.0);
    }
}

#[cfg(test)]
mod tests;
