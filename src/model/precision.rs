//! `--precision` on `train`, `eval` and `predict`: the math of CUDA convolutions, set once per
//! process through [`backbones::conv::set_allow_tf32`] before the model runs.
//!
//! - `tf32` (the default, as PyTorch's `torch.backends.cudnn.allow_tf32 = True`): cuDNN may use
//!   TF32 tensor cores, products rounded to a 10-bit mantissa and summed in f32;
//! - `fp32`: full f32 products (slower; what the CUDA-vs-CPU parity checks use).
//!
//! Our CPU kernels always compute in full f32: on CPU both values give the same results.
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
}

impl Precision {
    /// Sets the process-wide switch the CUDA convolutions read.
    pub fn apply(self) {
        backbones::conv::set_allow_tf32(self == Precision::Tf32);
    }

    /// The value as the command line and `config.json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
        }
    }
}

/// The TF32 switch is process-wide: unit tests that touch it take turns through this lock.
#[cfg(test)]
pub(crate) static SWITCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests;
