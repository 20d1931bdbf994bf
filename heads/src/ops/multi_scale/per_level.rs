//! MultiScaleRoiAlign off the CPU (CUDA): [`roi_align`] once per level on the RoIs of that
//! level, then one `index_select` that puts the rows back in input order. On a GPU the
//! reordering is a cheap device copy; a device without RoIAlign fails in [`roi_align`] with
//! an error naming it.

use candle_core::{DType, Result, Tensor};

use super::super::roi_align;
use super::MultiScaleRoiAlign;

/// Pools RoI `k` from `features[levels[k]]` (zero rows for `None`).
///
/// # Shapes
/// `features`: L levels `[N, C, H_l, W_l]` → `[rois.len(), C, oh, ow]`
pub(super) fn pool(
    features: &[Tensor],
    scales: &[f64],
    pooler: &MultiScaleRoiAlign,
    rois: &[[f32; 5]],
    levels: &[Option<usize>],
    channels: usize,
) -> Result<Tensor> {
    let device = features[0].device();
    let (oh, ow) = pooler.output_size;
    let mut parts = Vec::new();
    let mut position = vec![0u32; rois.len()];
    let mut done = 0usize;
    for (level, feature) in features.iter().enumerate() {
        let members: Vec<usize> = (0..rois.len())
            .filter(|&i| levels[i] == Some(level))
            .collect();
        if members.is_empty() {
            continue;
        }
        let flat: Vec<f32> = members.iter().flat_map(|&i| rois[i]).collect();
        let r = Tensor::from_vec(flat, (members.len(), 5), device)?; // [k_l, 5]
        let (size, sr) = (pooler.output_size, pooler.sampling_ratio);
        parts.push(roi_align(feature, &r, size, scales[level], sr, false)?); // [k_l, C, oh, ow]
        for &i in &members {
            position[i] = done as u32;
            done += 1;
        }
    }
    let unassigned: Vec<usize> = (0..rois.len()).filter(|&i| levels[i].is_none()).collect();
    if !unassigned.is_empty() {
        let shape = (unassigned.len(), channels, oh, ow);
        parts.push(Tensor::zeros(shape, DType::F32, device)?);
        for &i in &unassigned {
            position[i] = done as u32;
            done += 1;
        }
    }
    if parts.is_empty() {
        return Tensor::zeros((0, channels, oh, ow), DType::F32, device);
    }
    let pooled = Tensor::cat(&parts, 0)?; // [sum K_i, C, oh, ow], grouped by level
    let n = position.len();
    pooled.index_select(&Tensor::from_vec(position, n, device)?, 0)
}
