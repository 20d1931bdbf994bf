//! The SGD update as two fused in-place passes over contiguous f32 CPU tensors (one for the
//! momentum buffer, one for the parameter), instead of six tensor ops that each allocate and
//! stream the whole tensor: ~6x less memory traffic on the CPU, where the update of a
//! ResNeXt-101 detector otherwise costs seconds per iteration. Same arithmetic, same order as
//! the tensor-op path (and torch's single-tensor SGD): d = g + wd·p; buf = m·buf + d; p -= lr·buf.
use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        _ => bail!("{op}: expects contiguous f32 tensors"),
    }
}

/// `buf ← momentum·buf + (grad + weight_decay·param)`, or `buf ← grad + weight_decay·param` on
/// the first step; applied in place to `buf` with `(grad, param)` as sources.
pub(super) struct MomentumUpdate {
    pub momentum: f32,
    pub weight_decay: f32,
    pub first: bool,
}

impl InplaceOp3 for MomentumUpdate {
    fn name(&self) -> &'static str {
        "sgd-momentum-update"
    }

    fn cpu_fwd(
        &self,
        buf: &mut CpuStorage,
        lb: &Layout,
        grad: &CpuStorage,
        lg: &Layout,
        param: &CpuStorage,
        lp: &Layout,
    ) -> Result<()> {
        let g = contiguous(grad, lg, self.name())?;
        let p = contiguous(param, lp, self.name())?;
        let (CpuStorage::F32(buf), Some((start, end))) = (buf, lb.contiguous_offsets()) else {
            bail!("{}: expects a contiguous f32 buffer", self.name())
        };
        let buf = &mut buf[start..end];
        if buf.len() != g.len() || buf.len() != p.len() {
            bail!(
                "{}: buffer, gradient and parameter have {}, {} and {} elements",
                self.name(),
                buf.len(),
                g.len(),
                p.len()
            )
        }
        let (m, wd) = (self.momentum, self.weight_decay);
        if self.first {
            for ((b, &g), &p) in buf.iter_mut().zip(g).zip(p) {
                *b = g + wd * p;
            }
        } else {
            for ((b, &g), &p) in buf.iter_mut().zip(g).zip(p) {
                *b = *b * m + (g + wd * p);
            }
        }
        Ok(())
    }
}

/// `param ← param − lr·buf`, in place on `param`.
pub(super) struct ParamUpdate {
    pub lr: f32,
}

impl InplaceOp2 for ParamUpdate {
    fn name(&self) -> &'static str {
        "sgd-param-update"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        lp: &Layout,
        buf: &CpuStorage,
        lb: &Layout,
    ) -> Result<()> {
        let b = contiguous(buf, lb, self.name())?;
        let (CpuStorage::F32(param), Some((start, end))) = (param, lp.contiguous_offsets()) else {
            bail!("{}: expects a contiguous f32 parameter", self.name())
        };
        let p = &mut param[start..end];
        if p.len() != b.len() {
            bail!(
                "{}: parameter has {} elements, buffer {}",
                self.name(),
                p.len(),
                b.len()
            )
        }
        for (p, &b) in p.iter_mut().zip(b) {
            *p -= self.lr * b;
        }
        Ok(())
    }
}
