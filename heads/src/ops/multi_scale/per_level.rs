//! MultiScaleRoiAlign off the CPU (CUDA): the RoIs of each level picked on the device
//! ([`nonzero`] of `levels == l`), [`roi_align`] once per level on them, then one
//! `index_select` that puts the rows back in input order. Nothing but the per-level counts
//! reaches the host. A device without RoIAlign fails in [`roi_align`] with an error naming it.

use candle_core::{DType, Result, Tensor};

use super::super::{nonzero, roi_align};
use super::{MultiScaleRoiAlign, NO_LEVEL};

/// Pools RoI `k` from `features[levels[k]]` (zero rows for [`NO_LEVEL`]).
///
/// # Shapes
/// `features`: L levels `[N, C, H_l, W_l]`, `rois [K, 5]`, `levels [K]` I64 →
/// `[K, C, oh, ow]`
pub(super) fn pool(
    features: &[Tensor],
    scales: &[f64],
    pooler: &MultiScaleRoiAlign,
    rois: &Tensor,
    levels: &Tensor,
    channels: usize,
) -> Result<Tensor> {
    let device = features[0].device();
    let (oh, ow) = pooler.output_size;
    let k = rois.dim(0)?;
    if k == 0 {
        return Tensor::zeros((0, channels, oh, ow), DType::F32, device);
    }
    let mut parts = Vec::new();
    let mut order = Vec::new(); // the RoI of each pooled row, level by level
    let groups = (0..features.len() as i64).chain(std::iter::once(NO_LEVEL));
    for level in groups {
        let members = nonzero(&levels.eq(&Tensor::full(level, k, device)?)?)?; // [k_l]
        let count = members.dim(0)?;
        if count == 0 {
            continue;
        }
        if level == NO_LEVEL {
            parts.push(Tensor::zeros(
                (count, channels, oh, ow),
                DType::F32,
                device,
            )?);
        } else {
            let l = level as usize;
            let r = rois.index_select(&members, 0)?; // [k_l, 5]
            let (size, sr) = (pooler.output_size, pooler.sampling_ratio);
            parts.push(roi_align(&features[l], &r, size, scales[l], sr, false)?);
            // [k_l, C, oh, ow]
        }
        order.push(members);
    }
    let pooled = Tensor::cat(&parts, 0)?; // [K, C, oh, ow], grouped by level
    let order = Tensor::cat(&order, 0)?; // [K]: pooled row p holds RoI order[p]
                                         // position[order[p]] = p: the pooled row of each RoI.
    let rows = Tensor::arange(0u32, k as u32, device)?;
    let position = Tensor::zeros(k, DType::U32, device)?.scatter(&order, &rows, 0)?;
    pooled.index_select(&position, 0)
}
