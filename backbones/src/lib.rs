//! ResNet/ResNeXt backbones (stages C2..C5) and the Feature Pyramid Network, computing what
//! torchvision computes from the same weights.
//!
//! - [`ResNextConfig`] (by name: `resnet50`, `resnext101_32x4d`, `resnext50_8x14d`, ...)
//!   → [`ResNext`]: stem + four stages of [`Bottleneck`] blocks (C2..C5), each block runnable
//!   in the paper's three equivalent [`BlockForm`]s.
//! - [`Fpn`]: C2..C5 → P2..P6; [`BackboneWithFpn`] = `body` + `fpn`, built from a
//!   [`BackboneConfig`] and a `VarBuilder` whose paths are torchvision's (`body.layer1.0.conv2.weight`,
//!   `fpn.inner_blocks.0.0.weight`).
//! - [`conv`]: every convolution goes through it: a matmul for 1x1, else on CPU/f32 our
//!   [`conv_kernel`] (direct / im2col+gemm / Winograd / shifted-gemm forward, its own
//!   backward without candle's stride-2 parity bug), on CUDA our cuDNN op (`conv_cudnn`,
//!   `cuda` feature), else candle's `conv2d`.
//! - [`oom`]: recognising a CUDA out-of-memory error and saying what to lower.
//! - [`FrozenBatchNorm2d`]: fixed BN, configurable eps; [`conv_bn::ConvBn`]: a conv + BN pair,
//!   folded once at load time when its weights are fixed, then run as one fused CPU kernel
//!   (bias, residual add and ReLU in the conv's output loop); when they train, the same fused
//!   kernel as one autograd node that keeps only its output (training memory).
//! - [`weights`]: `.safetensors` / `.pth` → [`WeightMap`] (names normalised to a detector's
//!   state dict) → [`CheckedWeights`], a `VarBuilder` backend that checks shapes and records
//!   which keys were used.
//! - [`flops`]: parameter and multiply-add counts from the architecture alone.
//! - [`is_trainable`]: torchvision's `trainable_layers` freezing rule.
pub mod arch;
pub mod autocast;
pub mod backbone;
pub mod block;
pub mod conv;
pub mod conv_bn;
#[cfg(feature = "cuda")]
pub mod conv_cudnn;
pub mod conv_kernel;
pub mod error;
pub mod flops;
pub mod fpn;
pub mod frozen_batch_norm;
pub mod oom;
pub mod precision;
pub mod resnext;
pub mod trainable;
pub mod weights;

pub use arch::{ResNextConfig, NAMED_ARCHITECTURES};
pub use backbone::{BackboneConfig, BackboneWithFpn};
pub use block::{BlockForm, Bottleneck};
pub use error::BackboneError;
pub use fpn::Fpn;
pub use frozen_batch_norm::FrozenBatchNorm2d;
pub use resnext::ResNext;
pub use trainable::is_trainable;
pub use weights::{CheckedWeights, WeightMap};
