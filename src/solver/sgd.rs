//! SGD with momentum and weight decay, and global-norm gradient clipping, written to reproduce
//! torch.optim.SGD (dampening 0, no Nesterov) and torch.nn.utils.clip_grad_norm_.
use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

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
        for ((_, var), buf) in self.params.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            // Detached: the update must not extend the autograd graph from step to step.
            let p = var.as_tensor().detach();
            let grad = grad.detach();
            let d = if self.weight_decay != 0.0 {
                (grad + p.affine(self.weight_decay, 0.0)?)?
            } else {
                grad
            };
            let next = match buf.take() {
                Some(prev) if self.momentum != 0.0 => (prev.affine(self.momentum, 0.0)? + d)?,
                _ => d.copy()?,
            };
            var.set(&(p - next.affine(lr, 0.0)?)?)?;
            *buf = Some(next);
        }
        Ok(())
    }

    /// The momentum buffers by parameter name (parameters never updated have none).
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
            buffers[i] = Some(buf.to_dtype(var.dtype())?.to_device(var.device())?);
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
    let total = total
        .to_dtype(candle_core::DType::F32)?
        .to_scalar::<f32>()?;
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
