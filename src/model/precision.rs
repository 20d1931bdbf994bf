//! `--precision` on `train`, `eval` and `predict`: the math of CUDA convolutions, set once per
//! process through [`backbones::conv::set_allow_tf32`] before the model runs.
//!
//! - `tf32` (the default, as PyTorch's `torch.backends.cudnn.allow_tf32 = True`): cuDNN may use
//!   TF32 tensor cores, products rounded to a 10-bit mantissa and summed in f32;
//! - `fp32`: full f32 products (slower; what the CUDA-vs-CPU parity checks use);
//! - `bf16`: mixed precision, as torchvision's references with `--amp` on
//!   `torch.autocast(dtype=torch.bfloat16)`: convolutions and the box head's matmuls in bf16,
//!   RoIAlign, box decoding, NMS, the losses and the optimizer in f32, weights kept in f32
//!   ([`backbones::autocast`], set on the model by [`Precision::autocast`]).
//!
//! Our CPU kernels always compute in full f32: on CPU `fp32` and `tf32` give the same results,
//! and `bf16` rounds the operands and outputs of convolutions and matmuls to bf16 around the
//! f32 kernels (bf16's numbers, not its speed).
use candle_core::DType;
use serde::Serialize;

/// The math of CUDA convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Full f32.
    Fp32,
    /// TF32 tensor cores for convolutions (PyTorch's default).
    #[default]
    Tf32,
    /// Mixed precision: convolutions and matmuls in bf16, the rest in f32.
    Bf16,
}

impl Precision {
    /// Sets the process-wide switch the CUDA convolutions read (TF32 stays allowed under
    /// `bf16`, as PyTorch's default, for the f32 convolutions outside autocast: none in the
    /// detector).
    pub fn apply(self) {
        backbones::conv::set_allow_tf32(self != Precision::Fp32);
    }

    /// The dtype the model's forward passes autocast to
    /// ([`crate::model::faster_rcnn::FasterRcnn::set_autocast`]).
    pub fn autocast(self) -> Option<DType> {
        match self {
            Precision::Bf16 => Some(DType::BF16),
            Precision::Fp32 | Precision::Tf32 => None,
        }
    }

    /// The value as the command line and `config.json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// The TF32 switch is process-wide: unit tests that touch it take turns through this lock.
#[cfg(test)]
pub(crate) static SWITCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests;
