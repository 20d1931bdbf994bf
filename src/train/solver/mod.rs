//! The solver: SGD with momentum and weight decay (torch.optim.SGD's update), the learning-rate
//! schedule (linear warm-up then step decay, detectron2's `WarmupMultiStepLR`) and global-norm
//! gradient clipping (torch.nn.utils.clip_grad_norm_).
//!
//! The training loop calls, per iteration `it` (0-based): `lr = config.lr_at(it)`,
//! `check_finite_losses(it, &losses)?`, `grads = loss.backward()`, optionally
//! `clip_grad_norm(sgd.params(), &mut grads, max_norm)`, then `sgd.step(&grads, lr)`.
mod finite;
mod fused;
mod schedule;
mod sgd;

pub use finite::{check_finite_losses, NonFiniteLoss};
pub use schedule::{Schedule, SolverConfig, SolverError};
pub use sgd::{clip_grad_norm, Sgd};

#[cfg(test)]
mod tests;
