//! RoIAlign on the CPU, forward and backward, channels-last.
//!
//! The features are first transposed to `[N, H, W, C]`, so each bilinear sample reads four
//! contiguous C-vectors and the inner loop is a vectorised `acc[c] += w1*v1[c] + ... + w4*v4[c]`
//! (torchvision loops channel by channel with scalar gathers). Per RoI the sample positions and
//! weights are computed once and shared by all channels. The forward runs RoIs in parallel;
//! the backward splits the channels between threads, each scattering into its own
//! channels-last slab, so no two threads ever write the same float. The per-sample arithmetic
//! mirrors torchvision's kernel in f32, so forward outputs match it to the last bit or two.

use candle_core::Result;
use rayon::prelude::*;

use super::{Dims, Params};

/// Above this many samples per bin a RoI is refused rather than allocated (only absurd
/// coordinates get there: a 1e6-pixel-wide RoI on a 7x7 output with an adaptive grid).
const MAX_SAMPLES_PER_BIN: i64 = 1 << 20;

/// One bilinear sample: four pixel offsets within an image plane and their weights.
/// Out-of-range samples have zero weights.
#[derive(Clone, Copy, Default)]
struct Sample {
    pos: [u32; 4],
    w: [f32; 4],
}

/// Sampling geometry of one RoI: its image and `pooled_h * pooled_w * per_bin` samples, bin
/// after bin.
struct Geometry {
    batch: usize,
    per_bin: usize,
    /// Samples per bin as the divisor of the average (at least 1, as in torchvision).
    count: f32,
    samples: Vec<Sample>,
}

fn geometry(index: usize, roi: &[f32], d: Dims, p: Params) -> Result<Geometry> {
    let b = roi[0];
    if !(b >= 0.0 && (b as usize) < d.n) {
        candle_core::bail!(
            "roi_align: `rois` row {index} has batch index {b}, expected 0 <= index < {} (the batch size of `input`)",
            d.n
        );
    }
    let offset = if p.aligned { 0.5f32 } else { 0.0 };
    let start_w = roi[1] * p.spatial_scale - offset;
    let start_h = roi[2] * p.spatial_scale - offset;
    let end_w = roi[3] * p.spatial_scale - offset;
    let end_h = roi[4] * p.spatial_scale - offset;
    let (mut roi_w, mut roi_h) = (end_w - start_w, end_h - start_h);
    if !p.aligned {
        // Malformed RoIs are forced to 1x1 (torchvision: std::max(size, 1)).
        roi_w = if roi_w < 1.0 { 1.0 } else { roi_w };
        roi_h = if roi_h < 1.0 { 1.0 } else { roi_h };
    }
    let (ph, pw) = (p.pooled_h as f32, p.pooled_w as f32);
    let (bin_h, bin_w) = (roi_h / ph, roi_w / pw);
    // Adaptive grid: ceil(roi_size / output_size); NaN and negative sizes give an empty grid.
    let grid = |size: f32, pooled: f32| -> i64 {
        if p.sampling_ratio > 0 {
            p.sampling_ratio
        } else {
            ((size / pooled).ceil() as i64).max(0)
        }
    };
    let (grid_h, grid_w) = (grid(roi_h, ph), grid(roi_w, pw));
    if grid_h.saturating_mul(grid_w) > MAX_SAMPLES_PER_BIN {
        candle_core::bail!("roi_align: `rois` row {index} {:?} needs a {grid_h}x{grid_w} sampling grid per bin (more than {MAX_SAMPLES_PER_BIN} samples)", &roi[1..]);
    }
    let (grid_h, grid_w) = (grid_h as usize, grid_w as usize);
    let per_bin = grid_h * grid_w;
    let mut samples = Vec::with_capacity(p.pooled_h * p.pooled_w * per_bin);
    let (height, width) = (d.h as f32, d.w as f32);
    for bin_y in 0..p.pooled_h {
        for bin_x in 0..p.pooled_w {
            for iy in 0..grid_h {
                let yy = start_h + bin_y as f32 * bin_h + (iy as f32 + 0.5) * bin_h / grid_h as f32;
                for ix in 0..grid_w {
                    let xx =
                        start_w + bin_x as f32 * bin_w + (ix as f32 + 0.5) * bin_w / grid_w as f32;
                    samples.push(bilinear(yy, xx, height, width, d.w));
                }
            }
        }
    }
    Ok(Geometry {
        batch: b as usize,
        per_bin,
        count: (grid_h * grid_w).max(1) as f32,
        samples,
    })
}

/// torchvision's bilinear sample at `(y, x)`.
fn bilinear(mut y: f32, mut x: f32, height: f32, width: f32, w: usize) -> Sample {
    // Written as !(in range) so NaN coordinates land here too.
    if !(y >= -1.0 && y <= height && x >= -1.0 && x <= width) {
        return Sample::default();
    }
    y = if y <= 0.0 { 0.0 } else { y };
    x = if x <= 0.0 { 0.0 } else { x };
    let (hi_y, hi_x) = (height as usize - 1, width as usize - 1);
    let (mut y_low, mut x_low) = (y as usize, x as usize);
    let (y_high, x_high);
    if y_low >= hi_y {
        y_low = hi_y;
        y_high = hi_y;
        y = y_low as f32;
    } else {
        y_high = y_low + 1;
    }
    if x_low >= hi_x {
        x_low = hi_x;
        x_high = hi_x;
        x = x_low as f32;
    } else {
        x_high = x_low + 1;
    }
    let (ly, lx) = (y - y_low as f32, x - x_low as f32);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    let wts = [hy * hx, hy * lx, ly * hx, ly * lx];
    Sample {
        pos: [
            (y_low * w + x_low) as u32,
            (y_low * w + x_high) as u32,
            (y_high * w + x_low) as u32,
            (y_high * w + x_high) as u32,
        ],
        w: wts,
    }
}

/// `[N, C, HW]` → `[N, HW, C]`, in parallel over pixel blocks.
fn to_channels_last(input: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
    const PIXELS: usize = 64;
    const CHANNELS: usize = 16;
    let mut out = vec![0f32; n * hw * c];
    out.par_chunks_mut(PIXELS * c)
        .enumerate()
        .for_each(|(chunk, dst)| {
            let first = chunk * PIXELS; // flat pixel over n * hw
            let pixels = dst.len() / c;
            for c0 in (0..c).step_by(CHANNELS) {
                let c1 = (c0 + CHANNELS).min(c);
                for p in 0..pixels {
                    let (b, q) = ((first + p) / hw, (first + p) % hw);
                    let src = &input[b * c * hw + q..];
                    let row = &mut dst[p * c..p * c + c];
                    for ch in c0..c1 {
                        row[ch] = src[ch * hw];
                    }
                }
            }
        });
    out
}

/// Forward pass: `input [N, C, H, W]`, `rois [K * 5]` → `[K, C, pooled_h, pooled_w]`.
pub(crate) fn forward(input: &[f32], d: Dims, rois: &[f32], p: Params) -> Result<Vec<f32>> {
    let k = rois.len() / 5;
    let bins = p.pooled_h * p.pooled_w;
    let mut out = vec![0f32; k * d.c * bins];
    if out.is_empty() {
        return Ok(out);
    }
    if d.h == 0 || d.w == 0 {
        return Ok(out); // nothing to sample from: every sample is out of range
    }
    let geoms: Vec<Geometry> = (0..k)
        .into_par_iter()
        .map(|r| geometry(r, &rois[5 * r..5 * r + 5], d, p))
        .collect::<Result<_>>()?;
    let hw = d.h * d.w;
    let nhwc = to_channels_last(input, d.n, d.c, hw);
    let c = d.c;
    out.par_chunks_mut(c * bins)
        .zip(geoms.par_iter())
        .for_each(|(out_r, g)| {
            let image = &nhwc[g.batch * hw * c..(g.batch + 1) * hw * c];
            let mut acc = vec![0f32; bins * c]; // [bins, C]
            for (bin, acc_bin) in acc.chunks_exact_mut(c).enumerate() {
                for s in &g.samples[bin * g.per_bin..(bin + 1) * g.per_bin] {
                    let [p1, p2, p3, p4] = s.pos.map(|q| q as usize * c);
                    let [w1, w2, w3, w4] = s.w;
                    let (v1, v2, v3, v4) = (
                        &image[p1..p1 + c],
                        &image[p2..p2 + c],
                        &image[p3..p3 + c],
                        &image[p4..p4 + c],
                    );
                    for ((((a, &a1), &a2), &a3), &a4) in
                        acc_bin.iter_mut().zip(v1).zip(v2).zip(v3).zip(v4)
                    {
                        *a += w1 * a1 + w2 * a2 + w3 * a3 + w4 * a4;
                    }
                }
            }
            // [bins, C] → [C, bins]
            for (ch, out_c) in out_r.chunks_exact_mut(bins).enumerate() {
                for (bin, o) in out_c.iter_mut().enumerate() {
                    *o = acc[bin * c + ch] / g.count;
                }
            }
        });
    Ok(out)
}

/// Backward pass: `grad [K, C, pooled_h, pooled_w]`, `rois [K * 5]` → `grad_input [N, C, H, W]`.
pub(crate) fn backward(grad: &[f32], rois: &[f32], d: Dims, p: Params) -> Result<Vec<f32>> {
    let k = rois.len() / 5;
    let bins = p.pooled_h * p.pooled_w;
    let hw = d.h * d.w;
    let mut grad_input = vec![0f32; d.n * d.c * hw];
    if grad_input.is_empty() || k == 0 || bins == 0 {
        return Ok(grad_input);
    }
    let geoms: Vec<Geometry> = (0..k)
        .into_par_iter()
        .map(|r| geometry(r, &rois[5 * r..5 * r + 5], d, p))
        .collect::<Result<_>>()?;
    // Channel groups, one per thread: each scatters into its own [N, HW, group] slab.
    let threads = rayon::current_num_threads().clamp(1, d.c);
    let group = d.c.div_ceil(threads);
    let slabs: Vec<(usize, Vec<f32>)> = (0..d.c)
        .step_by(group)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|c0| {
            let cg = group.min(d.c - c0);
            let mut slab = vec![0f32; d.n * hw * cg];
            let mut g_bin = vec![0f32; cg];
            for (r, g) in geoms.iter().enumerate() {
                let grad_r = &grad[r * d.c * bins..(r + 1) * d.c * bins];
                let image = &mut slab[g.batch * hw * cg..(g.batch + 1) * hw * cg];
                for bin in 0..bins {
                    for (j, v) in g_bin.iter_mut().enumerate() {
                        *v = grad_r[(c0 + j) * bins + bin] / g.count;
                    }
                    for s in &g.samples[bin * g.per_bin..(bin + 1) * g.per_bin] {
                        for (&q, &w) in s.pos.iter().zip(&s.w) {
                            let q = q as usize * cg;
                            for (dst, &gv) in image[q..q + cg].iter_mut().zip(&g_bin) {
                                *dst += gv * w;
                            }
                        }
                    }
                }
            }
            (c0, slab)
        })
        .collect();
    // [N, HW, group] slabs → [N, C, H, W], one (image, channel) plane per task.
    grad_input
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(plane, dst)| {
            let (b, ch) = (plane / d.c, plane % d.c);
            let (c0, slab) = &slabs[ch / group];
            let cg = group.min(d.c - c0);
            let j = ch - c0;
            let src = &slab[b * hw * cg..(b + 1) * hw * cg];
            for (q, o) in dst.iter_mut().enumerate() {
                *o = src[q * cg + j];
            }
        });
    Ok(grad_input)
}
