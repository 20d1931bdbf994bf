//! SGD with momentum and weight decay, and global-norm gradient clipping, written to reproduce
//! torch.optim.SGD (dampening 0, no Nesterov) and torch.nn.utils.clip_grad_norm_.
use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

use super::fused::{MomentumUpdate, ParamUpdate};

/// SGD with momentum over a fixed, name-sorted list of parameters.
///
/// One step, for each parameter `p` that has a gradient `g` (parameters without one are left
/// untouched, as torch skips `p.grad is None`):
/// ```text
/// d   = g + weight_decay · p
/// buf = d                       (first step)
/// buf = momentum · buf + d      (later steps)
/// p   = p − lr · buf
/// ```
pub struct Sgd {
    params: Vec<(String, Var)>,
    momentum: f64,
    weight_decay: f64,
    /// Momentum buffers, aligned with `params`; `None` until the parameter's first update.
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Sorts `params` by name (the update order and the order of saved state).
    pub fn new(mut params: Vec<(String, Var)>, momentum: f64, weight_decay: f64) -> Result<Self> {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = params.windows(2).find(|w| w[0].0 == w[1].0) {
            candle_core::bail!("Sgd::new: parameter `{}` listed twice", w[0].0)
        }
        let buffers = vec![None; params.len()];
        Ok(Self {
            params,
            momentum,
            weight_decay,
            buffers,
        })
    }

    /// The parameters, sorted by name.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Applies one update with learning rate `lr`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let hyper = (self.momentum, self.weight_decay);
        for ((_, var), buf) in self.params.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let fused = var.device().is_cpu()
                && var.dtype() == DType::F32
                && grad.dtype() == DType::F32
                && self.momentum != 0.0;
            if fused {
                Self::step_fused(hyper, var, grad, buf, lr)?;
            } else {
                Self::step_tensor_ops(hyper, var, grad, buf, lr)?;
            }
        }
        Ok(())
    }

    /// Two in-place passes (CPU, f32; see `fused`).
    fn step_fused(
        (momentum, weight_decay): (f64, f64),
        var: &Var,
        grad: &Tensor,
        buf: &mut Option<Tensor>,
        lr: f64,
    ) -> Result<()> {
        let p = var.as_tensor();
        let grad = grad.contiguous()?;
        let first = buf.is_none();
        let b = match buf {
            Some(b) => b.clone(),
            None => Tensor::zeros_like(p)?,
        };
        let update = MomentumUpdate {
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            first,
        };
        b.inplace_op3(&grad, p, &update)?;
        p.inplace_op2(&b, &ParamUpdate { lr: lr as f32 })?;
        *buf = Some(b);
        Ok(())
    }

    /// The same update with tensor ops (any device and dtype).
    fn step_tensor_ops(
        (momentum, weight_decay): (f64, f64),
        var: &Var,
        grad: &Tensor,
        buf: &mut Option<Tensor>,
        lr: f64,
    ) -> Result<()> {
        // Detached: the update must not extend the autograd graph from step to step.
        let p = var.as_tensor().detach();
        let grad = grad.detach();
        let d = if weight_decay != 0.0 {
            (grad + p.affine(weight_decay, 0.0)?)?
        } else {
            grad
        };
        let next = match buf.take() {
            Some(prev) if momentum != 0.0 => (prev.affine(momentum, 0.0)? + d)?,
            _ => d.copy()?,
        };
        var.set(&(p - next.affine(lr, 0.0)?)?)?;
        *buf = Some(next);
        Ok(())
    }

    /// The momentum buffers by parameter name (parameters never updated have none). These are
    /// the live buffers, updated in place by the next [`Sgd::step`]: serialise (or copy) them
    /// before stepping again.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((name, _), buf)| buf.as_ref().map(|b| (name.clone(), b.clone())))
            .collect()
    }

    /// Restores momentum buffers saved by [`Sgd::state`]. Every buffer must name a parameter of
    /// the same shape; parameters absent from `state` start without a buffer.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let index: HashMap<&str, usize> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect();
        let mut buffers = vec![None; self.params.len()];
        for (name, buf) in state {
            let Some(&i) = index.get(name.as_str()) else {
                candle_core::bail!(
                    "optimizer state names `{name}`, which is not a trained parameter"
                )
            };
            let var = &self.params[i].1;
            if buf.dims() != var.dims() {
                candle_core::bail!(
                    "optimizer state for `{name}`: expected shape {:?}, found {:?}",
                    var.dims(),
                    buf.dims()
                )
            }
            // A copy: buffers are updated in place, and must not be shared with the caller.
            buffers[i] = Some(buf.to_dtype(var.dtype())?.to_device(var.device())?.copy()?);
        }
        self.buffers = buffers;
        Ok(())
    }
}

/// Scales the gradients of `params` in place so that their global L2 norm is at most
/// `max_norm`, as torch.nn.utils.clip_grad_norm_: total = ‖(‖g_i‖₂)_i‖₂,
/// coef = min(max_norm / (total + 1e-6), 1). Returns the norm before clipping.
pub fn clip_grad_norm(
    params: &[(String, Var)],
    grads: &mut GradStore,
    max_norm: f64,
) -> Result<f64> {
    let present: Vec<&Var> = params
        .iter()
        .map(|(_, v)| v)
        .filter(|v| grads.get(v.as_tensor()).is_some())
        .collect();
    if present.is_empty() {
        return Ok(0.0);
    }
    let mut squares = Vec::with_capacity(present.len());
    for var in &present {
        let g = grads.get(var.as_tensor()).expect("filtered above");
        squares.push(g.sqr()?.sum_all()?); // [] per parameter, in the gradient's dtype
    }
    let total = Tensor::stack(&squares, 0)?.sum_all()?.sqrt()?;
    let total: f32 = heads::ops::transfer::read_scalar(
        "clip_grad_norm: norm",
        &total.to_dtype(candle_core::DType::F32)?,
    )?;
    let coef = (max_norm as f32 / (total + 1e-6)).min(1.0);
    if coef < 1.0 {
        for var in present {
            let g = grads.get(var.as_tensor()).expect("filtered above");
            let clipped = g.affine(coef as f64, 0.0)?;
            grads.insert(var.as_tensor(), clipped);
        }
    }
    Ok(total as f64)
}
