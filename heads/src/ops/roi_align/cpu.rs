//! RoIAlign on the CPU, forward and backward, reading the features in their NCHW layout.
//!
//! One kernel serves [`roi_align`](super::roi_align) (one level) and `MultiScaleRoiAlign`
//! (each RoI pooled from its own FPN level): every output row names its RoI and its level, and
//! the features are never copied or transposed. Per RoI the sample taps are computed once
//! ([`sampling`]) and shared by all channels, as torchvision's pre-calculation is.
//!
//! Loop order is chosen for the caches: a channel plane of P2 (200x336 floats) fits in L2, a
//! RoI's samples touch a few hundred scattered pixels of it. The forward splits the output rows
//! into a few chunks (in parallel) and walks each chunk a few channels at a time, so those
//! planes stay cached while every RoI of the chunk reads them. The backward runs a few
//! `(image, channel)` planes per task and scatters into them from every RoI of that image, so
//! no two threads write the same float and each plane is written from cache.

mod sampling;
#[cfg(test)]
mod tests;

use candle_core::Result;
use rayon::prelude::*;

use super::{Dims, Params};
use sampling::sampling;
pub(crate) use sampling::Sampling;

/// Channels per step of the loops over RoIs: each RoI's output rows (forward) or gradient
/// rows (backward) for these channels are contiguous, where one channel's are a whole row of
/// `C * bins` floats apart (a cache miss per RoI); four P2 planes (4 x 263 KiB) still fit in L2.
const CHANNEL_BLOCK: usize = 4;

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
            let mut row = Vec::new();
            let first_row = chunk * chunk_rows;
            let rows = &samplings[first_row..first_row + out.len() / row_len];
            for block in (0..c).step_by(CHANNEL_BLOCK) {
                let block = block..(block + CHANNEL_BLOCK).min(c);
                for (s, out_row) in rows.iter().zip(out.chunks_exact_mut(row_len)) {
                    let Some((l, s)) = s else { continue };
                    let level = &levels[*l];
                    let hw = level.dims.h * level.dims.w;
                    for ch in block.clone() {
                        let plane = &level.data[(s.batch * c + ch) * hw..][..hw];
                        let out_bins = &mut out_row[ch * bins..(ch + 1) * bins];
                        pool_plane(plane, level.dims.w, s, pw, out_bins, &mut row);
                    }
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
    // Zeros written, not `vec![0f32; _]`: calloc's fresh pages map the shared zero page, and
    // the scatter's first `+=` then takes a copy-on-write fault with a TLB flush on every
    // core per 4 KiB page (in perf: half the backward's time). Written in parallel.
    let mut grad_input = Vec::new();
    (0..n * c * hw)
        .into_par_iter()
        .map(|_| 0f32)
        .collect_into_vec(&mut grad_input);
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
    // Tasks of `block` consecutive planes of one image (a divisor of C).
    let block = (1..=CHANNEL_BLOCK).rev().find(|b| c % b == 0).unwrap_or(1);
    grad_input
        .par_chunks_mut(block * hw)
        .enumerate()
        .for_each_init(Vec::new, |buffer, (task, planes)| {
            let (b, ch0) = ((task * block) / c, (task * block) % c);
            for &(row, s) in &rows_of_image[b] {
                let g = &grad[(row * c + ch0) * bins..][..block * bins];
                for (plane, g) in planes.chunks_exact_mut(hw).zip(g.chunks_exact(bins)) {
                    scatter_plane(plane, w, s, pw, g, buffer);
                }
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

/// One RoI, one channel: `out[by * pw + bx]` = the average of bin `(by, bx)`'s samples.
///
/// Separable, as the bilinear weights are: for each bin row, first the sum over its row taps
/// of each needed column interpolated between the tap's two rows (`row`, one contiguous pass
/// per tap when the columns are a run), then each column tap from that. The same weights as
/// torchvision's, summed in another order: equal to its result within f32 rounding.
fn pool_plane(
    plane: &[f32],
    width: usize,
    s: &Sampling,
    pw: usize,
    out: &mut [f32],
    row: &mut Vec<f32>,
) {
    let (gh, gw, cols) = (s.grid_h, s.grid_w, &s.cols);
    row.clear();
    row.resize(cols.len, 0.0);
    for (by, out_row) in out.chunks_exact_mut(pw).enumerate() {
        row.fill(0.0);
        for y in s.ys[by * gh..(by + 1) * gh].iter().flatten() {
            let lo = &plane[y.lo * width..][..width];
            let hi = &plane[y.hi * width..][..width];
            match cols.start {
                Some(c0) => {
                    let (lo, hi) = (&lo[c0..c0 + cols.len], &hi[c0..c0 + cols.len]);
                    for ((r, a), b) in row.iter_mut().zip(lo).zip(hi) {
                        *r += y.h * a + y.l * b;
                    }
                }
                None => {
                    for (r, &c) in row.iter_mut().zip(&cols.list) {
                        *r += y.h * lo[c] + y.l * hi[c];
                    }
                }
            }
        }
        for (bx, o) in out_row.iter_mut().enumerate() {
            let mut acc = 0f32;
            for x in cols.taps[bx * gw..(bx + 1) * gw].iter().flatten() {
                acc += x.h * row[x.lo] + x.l * row[x.hi];
            }
            *o = acc / s.count;
        }
    }
}

/// One RoI, one channel of the backward: each sample of bin `(by, bx)` adds
/// `g[by * pw + bx] / count` times its four weights to its four pixels.
///
/// Separable like [`pool_plane`]: per bin row, the column taps first spread their gradient
/// over the needed columns (`row`), then each row tap adds that, times its two weights, to its
/// two rows (one contiguous pass per tap when the columns are a run).
fn scatter_plane(
    plane: &mut [f32],
    width: usize,
    s: &Sampling,
    pw: usize,
    g: &[f32],
    row: &mut Vec<f32>,
) {
    let (gh, gw, cols) = (s.grid_h, s.grid_w, &s.cols);
    row.clear();
    row.resize(cols.len, 0.0);
    for (by, g_row) in g.chunks_exact(pw).enumerate() {
        row.fill(0.0);
        for (bx, &gv) in g_row.iter().enumerate() {
            let gv = gv / s.count;
            for x in cols.taps[bx * gw..(bx + 1) * gw].iter().flatten() {
                row[x.lo] += gv * x.h;
                row[x.hi] += gv * x.l;
            }
        }
        for y in s.ys[by * gh..(by + 1) * gh].iter().flatten() {
            let (lo, hi) = (y.lo * width, y.hi * width);
            match cols.start {
                Some(c0) => {
                    let n = cols.len;
                    for (p, r) in plane[lo + c0..lo + c0 + n].iter_mut().zip(row.iter()) {
                        *p += y.h * r;
                    }
                    for (p, r) in plane[hi + c0..hi + c0 + n].iter_mut().zip(row.iter()) {
                        *p += y.l * r;
                    }
                }
                None => {
                    for (&c, r) in cols.list.iter().zip(row.iter()) {
                        plane[lo + c] += y.h * r;
                        plane[hi + c] += y.l * r;
                    }
                }
            }
        }
    }
}
