//! The process-wide math precision of CUDA convolutions (read by `conv_cudnn` at each call,
//! re-exported by the `conv` module as `conv::set_allow_tf32`).
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_TF32: AtomicBool = AtomicBool::new(true);

/// Whether CUDA convolutions may use TF32 tensor-core math (10-bit mantissa products, f32
/// sums): on by default, as PyTorch's `torch.backends.cudnn.allow_tf32`. Off gives full f32
/// (the CUDA-vs-CPU parity checks and `detect doctor` use it). Process-wide; read at each
/// convolution call. No effect on CPU.
pub fn set_allow_tf32(allow: bool) {
    ALLOW_TF32.store(allow, Ordering::Relaxed);
}

/// See [`set_allow_tf32`].
pub fn allow_tf32() -> bool {
    ALLOW_TF32.load(Ordering::Relaxed)
}
