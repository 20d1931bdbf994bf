//! MultiScaleRoiAlign on the CPU: every RoI's row is pooled straight from its level's NCHW
//! features into its place in the output, with gradients to every level.
//!
//! A candle custom op takes at most three tensors and FPN has four levels, so the pooling is a
//! short chain of stages. A stage is one custom op over one or two levels ("own") and, except
//! for the last stage, the output of the next one ("rest"). It writes the rows of its own
//! levels with the shared RoIAlign kernel and copies the other rows from `rest`, whose rows are
//! the RoIs of the remaining levels in input order. The first stage, which writes every row,
//! takes the two levels with the most RoIs, so only the rows of the less used levels are copied
//! (once per stage they pass through). The backward mirrors it: a stage scatters its rows into
//! its own levels' gradients and hands the rows of `rest` on (an `index_select`).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::super::roi_align::cpu::{self, Roi};
use super::super::roi_align::{Dims, Params};

/// One stage of the chain (see the module docs).
struct Stage {
    /// This stage's output rows in input order; `level` indexes `own` (`None`: from `rest`,
    /// or zero for a RoI with no level).
    rows: Arc<Vec<Roi>>,
    /// Shape and pooling parameters of each own level, in argument order.
    own: Vec<(Dims, Params)>,
    /// For each row of `rest`, the row of this stage it fills (empty when there is no rest).
    from_rest: Vec<u32>,
}

/// Pools RoI `k` (`(image, x1, y1, x2, y2)`) from `features[levels[k]]` with `params[level]`.
///
/// # Shapes
/// `features`: L levels `[N, C, H_l, W_l]` on the CPU → `[rois.len(), C, pooled_h, pooled_w]`
pub(super) fn pool(
    features: &[Tensor],
    params: &[Params],
    rois: &[[f32; 5]],
    levels: &[Option<usize>],
) -> Result<Tensor> {
    let mut counts = vec![0usize; features.len()];
    for l in levels.iter().flatten() {
        counts[*l] += 1;
    }
    // Levels with RoIs, the most used first (ties: lower level first); two per stage.
    let mut order: Vec<usize> = (0..features.len()).filter(|&l| counts[l] > 0).collect();
    order.sort_by_key(|&l| std::cmp::Reverse(counts[l]));
    let groups: Vec<&[usize]> = order.chunks(2).collect();
    let (_, c, _, _) = features[0].dims4()?;
    let (ph, pw) = (params[0].pooled_h, params[0].pooled_w);
    if groups.is_empty() {
        let shape = (rois.len(), c, ph, pw);
        return Tensor::zeros(shape, candle_core::DType::F32, features[0].device());
    }
    let mut rest: Option<Tensor> = None;
    for g in (0..groups.len()).rev() {
        // Rows of this stage: the RoIs of groups g.. (every RoI for the first stage).
        let later =
            |k: usize| levels[k].is_some_and(|l| groups[g + 1..].iter().any(|gr| gr.contains(&l)));
        let mine = |k: usize| levels[k].and_then(|l| groups[g].iter().position(|&m| m == l));
        let members: Vec<usize> = (0..rois.len())
            .filter(|&k| g == 0 || mine(k).is_some() || later(k))
            .collect();
        let rows: Vec<Roi> = members
            .iter()
            .map(|&k| Roi {
                roi: rois[k],
                level: mine(k),
            })
            .collect();
        let from_rest: Vec<u32> = (0..members.len() as u32)
            .filter(|&i| later(members[i as usize]))
            .collect();
        let own: Vec<&Tensor> = groups[g].iter().map(|&l| &features[l]).collect();
        let stage = Stage {
            rows: Arc::new(rows),
            own: groups[g]
                .iter()
                .map(|&l| Ok((dims(&features[l])?, params[l])))
                .collect::<Result<_>>()?,
            from_rest,
        };
        let own: Vec<Tensor> = own.iter().map(|t| t.contiguous()).collect::<Result<_>>()?;
        rest = Some(match (own.as_slice(), rest) {
            ([a], None) => a.apply_op1(stage)?,
            ([a, b], None) => a.apply_op2(b, stage)?,
            ([a, b], Some(r)) => a.apply_op3(b, &r, stage)?,
            // Groups hold two levels except perhaps the last, which is built first (no rest).
            _ => unreachable!("a stage with one level has no rest"),
        });
    }
    rest.ok_or_else(|| candle_core::Error::Msg("MultiScaleRoiAlign: no stage".into()))
}

fn dims(t: &Tensor) -> Result<Dims> {
    let (n, c, h, w) = t.dims4()?;
    Ok(Dims { n, c, h, w })
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    crate::ops::cpu_slice("MultiScaleRoiAlign", s, l)
}

impl Stage {
    fn cpu_forward(&self, own: &[&[f32]], rest: Option<&[f32]>) -> Result<(CpuStorage, Shape)> {
        let levels: Vec<cpu::Level> = own
            .iter()
            .zip(&self.own)
            .map(|(&data, &(dims, params))| cpu::Level { data, dims, params })
            .collect();
        let mut out = cpu::forward(&levels, &self.rows)?;
        let (dims, params) = self.own[0];
        let row_len = dims.c * params.pooled_h * params.pooled_w;
        if let Some(rest) = rest {
            for (src, &i) in rest.chunks_exact(row_len).zip(&self.from_rest) {
                let i = i as usize;
                out[i * row_len..(i + 1) * row_len].copy_from_slice(src);
            }
        }
        let shape = (self.rows.len(), dims.c, params.pooled_h, params.pooled_w);
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    /// Gradients w.r.t. each own level and w.r.t. `rest` (when this stage has one).
    fn grads(&self, grad: &Tensor) -> Result<(Vec<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let own = (0..self.own.len())
            .map(|index| {
                let (dims, params) = self.own[index];
                let back = StageBackward {
                    rows: self.rows.clone(),
                    index,
                    dims,
                    params,
                };
                grad.apply_op1_no_bwd(&back)
            })
            .collect::<Result<_>>()?;
        let rest = if self.from_rest.is_empty() {
            None
        } else {
            let index = Tensor::new(self.from_rest.as_slice(), grad.device())?;
            Some(grad.index_select(&index, 0)?)
        };
        Ok((own, rest))
    }
}

impl CustomOp1 for Stage {
    fn name(&self) -> &'static str {
        "multi_scale_roi_align"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu_forward(&[slice(s, l)?], None)
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(self.grads(grad)?.0.pop())
    }
}

impl CustomOp2 for Stage {
    fn name(&self) -> &'static str {
        "multi_scale_roi_align"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu_forward(&[slice(s1, l1)?, slice(s2, l2)?], None)
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (mut own, _) = self.grads(grad)?;
        let second = own.pop();
        Ok((own.pop(), second))
    }
}

impl CustomOp3 for Stage {
    fn name(&self) -> &'static str {
        "multi_scale_roi_align"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let own = [slice(s1, l1)?, slice(s2, l2)?];
        self.cpu_forward(&own, Some(slice(s3, l3)?))
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (mut own, rest) = self.grads(grad)?;
        let second = own.pop();
        Ok((own.pop(), second, rest))
    }
}

/// The gradient w.r.t. own level `index` of a stage, from the gradient of its output;
/// recorded with `_no_bwd` (no second-order gradients).
struct StageBackward {
    rows: Arc<Vec<Roi>>,
    index: usize,
    dims: Dims,
    params: Params,
}

impl CustomOp1 for StageBackward {
    fn name(&self) -> &'static str {
        "multi_scale_roi_align_backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let grad = slice(s, l)?;
        let out = cpu::backward(grad, &self.rows, self.index, self.dims, self.params)?;
        let Dims { n, c, h, w } = self.dims;
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}
