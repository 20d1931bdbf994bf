//! RoIAlign on the CPU, forward and backward, reading the features in their NCHW layout.
//!
//! One kernel serves [`roi_align`](super::roi_align) (one level) and `MultiScaleRoiAlign`
//! (each RoI pooled from its own FPN level): every output row names its RoI and its level, and
//! the features are never copied or transposed. Per RoI the sample taps are computed once
//! ([`sampling`]) and shared by all channels, as torchvision's pre-calculation is.
//!
//! Loop order is chosen for the caches: a channel plane of P2 (200x336 floats) fits in L2, a
//! RoI's samples touch a few hundred scattered pixels of it. The forward splits the output rows
//! into a few chunks (in parallel) and walks each chunk channel by channel, so the planes of
//! channel `c` stay cached while every RoI of the chunk reads them. The backward runs one
//! `(image, channel)` plane per task and scatters into it from every RoI of that image, so no
//! two threads write the same float and each plane is written from cache.

mod sampling;
#[cfg(test)]
mod tests;

use candle_core::Result;
use rayon::prelude::*;

use super::{Dims, Params};
pub(crate) use sampling::Sampling;
use sampling::{sampling, Tap};

/// One feature map and how RoI coordinates map onto it (`params.spatial_scale`).
#[derive(Clone, Copy)]
pub(crate) struct Level<'a> {
    /// `[N, C, H, W]`, contiguous.
    pub data: &'a [f32],
    pub dims: Dims,
    pub params: Params,
}

/// One output row: `(batch_index, x1, y1, x2, y2)` and the index of the level it is pooled
/// from; `None` leaves the row untouched (zero, or filled by the caller).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roi {
    pub roi: [f32; 5],
    pub level: Option<usize>,
}

/// Forward: row `k` of the result is `rois[k]` pooled from `levels[rois[k].level]`.
///
/// # Shapes
/// every level `[N, C, H_l, W_l]` → `[rois.len(), C, pooled_h, pooled_w]`
pub(crate) fn forward(levels: &[Level], rois: &[Roi]) -> Result<Vec<f32>> {
    let Some(first) = levels.first() else {
        candle_core::bail!("roi_align: no feature level to pool from");
    };
    let (c, ph, pw) = (first.dims.c, first.params.pooled_h, first.params.pooled_w);
    let (bins, row_len) = (ph * pw, first.dims.c * ph * pw);
    let mut out = vec![0f32; rois.len() * row_len];
    if out.is_empty() {
        return Ok(out);
    }
    let samplings = samplings(rois, |l| levels.get(l).map(|v| (v.dims, v.params)))?;
    // A few chunks per thread: each chunk walks all channels once, so fewer chunks read each
    // plane fewer times; more chunks balance the threads when the cores are shared.
    let chunks = 2 * rayon::current_num_threads();
    let chunk_rows = rois.len().div_ceil(chunks).max(1);
    out.par_chunks_mut(chunk_rows * row_len)
        .enumerate()
        .for_each(|(chunk, out)| {
            let first_row = chunk * chunk_rows;
            let rows = &samplings[first_row..first_row + out.len() / row_len];
            for ch in 0..c {
                for (s, out_row) in rows.iter().zip(out.chunks_exact_mut(row_len)) {
                    let Some((l, s)) = s else { continue };
                    let level = &levels[*l];
                    let hw = level.dims.h * level.dims.w;
                    let plane = &level.data[(s.batch * c + ch) * hw..][..hw];
                    let out_bins = &mut out_row[ch * bins..(ch + 1) * bins];
                    pool_plane(plane, level.dims.w, s, pw, out_bins);
                }
            }
        });
    Ok(out)
}

/// Backward for one level: the gradient w.r.t. level `index` (of `dims`, pooled with `params`)
/// from `grad`, the gradient of a forward over `rois`; rows of other levels contribute nothing.
///
/// # Shapes
/// `grad [rois.len(), C, pooled_h, pooled_w]` → `[N, C, H, W]` (`dims`)
pub(crate) fn backward(
    grad: &[f32],
    rois: &[Roi],
    index: usize,
    dims: Dims,
    params: Params,
) -> Result<Vec<f32>> {
    let Dims { n, c, h, w } = dims;
    let (ph, pw) = (params.pooled_h, params.pooled_w);
    let bins = ph * pw;
    let hw = h * w;
    let mut grad_input = vec![0f32; n * c * hw];
    if grad_input.is_empty() || rois.is_empty() || bins == 0 {
        return Ok(grad_input);
    }
    let samplings = samplings(rois, |l| (l == index).then_some((dims, params)))?;
    // The rows of each image, so that a plane task visits only its own RoIs.
    let mut rows_of_image: Vec<Vec<(usize, &Sampling)>> = vec![Vec::new(); n];
    for (row, s) in samplings.iter().enumerate() {
        if let Some((_, s)) = s {
            rows_of_image[s.batch].push((row, s));
        }
    }
    grad_input
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let (b, ch) = (plane_index / c, plane_index % c);
            for &(row, s) in &rows_of_image[b] {
                let g = &grad[(row * c + ch) * bins..][..bins];
                scatter_plane(plane, w, s, pw, g);
            }
        });
    Ok(grad_input)
}

/// The sampling of every row whose level `level_of` describes, with that level's index;
/// `None` for the other rows.
fn samplings(
    rois: &[Roi],
    level_of: impl Fn(usize) -> Option<(Dims, Params)> + Sync,
) -> Result<Vec<Option<(usize, Sampling)>>> {
    rois.par_iter()
        .enumerate()
        .map(
            |(row, r)| match r.level.and_then(|l| Some((l, level_of(l)?))) {
                Some((l, (dims, params))) => Ok(Some((l, sampling(row, r.roi, dims, params)?))),
                None => Ok(None),
            },
        )
        .collect()
}

/// The rows of a `[K, 5]` RoI tensor, all pooled from level 0.
pub(crate) fn single_level(rois: &[f32]) -> Vec<Roi> {
    rois.chunks_exact(5)
        .map(|r| Roi {
            roi: [r[0], r[1], r[2], r[3], r[4]],
            level: Some(0),
        })
        .collect()
}

/// The four weights of the sample at row tap `y`, column tap `x` (torchvision's w1..w4).
#[inline(always)]
fn weights(y: &Tap, x: &Tap) -> [f32; 4] {
    [y.h * x.h, y.h * x.l, y.l * x.h, y.l * x.l]
}

/// One RoI, one channel: `out[by * pw + bx]` = the average of bin `(by, bx)`'s samples, summed
/// in torchvision's order (row sample, then column sample).
fn pool_plane(plane: &[f32], width: usize, s: &Sampling, pw: usize, out: &mut [f32]) {
    let (gh, gw) = (s.grid_h, s.grid_w);
    for (by, out_row) in out.chunks_exact_mut(pw).enumerate() {
        for y in s.ys[by * gh..(by + 1) * gh].iter().flatten() {
            let lo = &plane[y.lo * width..][..width];
            let hi = &plane[y.hi * width..][..width];
            for (bx, o) in out_row.iter_mut().enumerate() {
                let mut acc = *o;
                for x in s.xs[bx * gw..(bx + 1) * gw].iter().flatten() {
                    let [w1, w2, w3, w4] = weights(y, x);
                    acc += w1 * lo[x.lo] + w2 * lo[x.hi] + w3 * hi[x.lo] + w4 * hi[x.hi];
                }
                *o = acc;
            }
        }
    }
    for o in out {
        *o /= s.count;
    }
}

/// One RoI, one channel of the backward: each sample of bin `(by, bx)` adds
/// `g[by * pw + bx] / count` times its four weights to its four pixels.
fn scatter_plane(plane: &mut [f32], width: usize, s: &Sampling, pw: usize, g: &[f32]) {
    let (gh, gw) = (s.grid_h, s.grid_w);
    for (by, g_row) in g.chunks_exact(pw).enumerate() {
        for y in s.ys[by * gh..(by + 1) * gh].iter().flatten() {
            let (lo, hi) = (y.lo * width, y.hi * width);
            for (bx, &gv) in g_row.iter().enumerate() {
                let gv = gv / s.count;
                for x in s.xs[bx * gw..(bx + 1) * gw].iter().flatten() {
                    let [w1, w2, w3, w4] = weights(y, x);
                    plane[lo + x.lo] += gv * w1;
                    plane[lo + x.hi] += gv * w2;
                    plane[hi + x.lo] += gv * w3;
                    plane[hi + x.hi] += gv * w4;
                }
            }
        }
    }
}
