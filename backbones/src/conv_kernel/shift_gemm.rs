//! Stride-1 convolution with many input channels per group (the FPN's dense 3x3s) as k*k
//! shifted matrix products, without an im2col: on a zero-padded copy of the input, output row
//! `oy` is `sum_{ky,kx} W[:, :, ky, kx] x Xpad[:, oy + ky, kx .. kx + Wo]`, and each term is one
//! gemm whose right-hand side is a strided view (row stride = one padded plane).
use gemm::Parallelism;
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{matmul, Geometry, Unfilled};

/// Whether this kernel is the better choice: stride 1, a real kernel, and at least 64 input
/// channels per group so every gemm has a useful inner dimension.
pub(super) fn prefer_shift_gemm(geo: &Geometry) -> bool {
    geo.stride == 1 && geo.k > 1 && geo.cg() >= 64
}

/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin/G, k, k]` (both contiguous) -> `[N, Cout, Ho, Wo]`
pub(super) fn conv_shift_gemm(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    let (h, wd, k, pad) = (geo.h, geo.w, geo.k, geo.pad);
    let (hp, wp) = (h + 2 * pad, wd + 2 * pad);
    let plane = hp * wp;
    // Zero-padded input [N, Cin, Hp, Wp] (+ k of slack: only ever read by cropped columns).
    let mut xp = vec![0f32; geo.n * geo.c * plane + k];
    xp[..geo.n * geo.c * plane]
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(i, dst)| {
            let src = &x[i * h * wd..][..h * wd];
            for (y, row) in src.chunks(wd).enumerate() {
                dst[(y + pad) * wp + pad..][..wd].copy_from_slice(row);
            }
        });
    let (hw, mg, cg, wo) = (geo.hw_out(), geo.mg(), geo.cg(), geo.wo);
    let mut out = Unfilled::new(geo.n * geo.cout * hw);
    let dst = out.ptr();
    let tasks: Vec<(usize, usize, usize)> = (0..geo.n * geo.groups)
        .flat_map(|ng| (0..geo.ho).map(move |oy| (ng / geo.groups, ng % geo.groups, oy)))
        .collect();
    tasks.par_iter().for_each(|&(n, g, oy)| {
        for ky in 0..k {
            for kx in 0..k {
                // Task (n, g, oy) alone writes output row oy of group g's channels of image n.
                unsafe {
                    let out_row = dst.get().add((n * geo.cout + g * mg) * hw + oy * wo);
                    let w_tap = w.as_ptr().add(g * mg * cg * k * k + ky * k + kx); // [mg, cg], strided
                    let x_tap = xp
                        .as_ptr()
                        .add((n * geo.c + g * cg) * plane + (oy + ky) * wp + kx);
                    let first = ky == 0 && kx == 0;
                    matmul(
                        (mg, wo, cg),
                        out_row,
                        hw,
                        !first,
                        w_tap,
                        (cg * k * k, k * k),
                        x_tap,
                        (plane, 1),
                        Parallelism::None,
                    );
                }
            }
        }
        // SAFETY: as above, this task owns row oy of group g's channels of image n.
        unsafe { ep.apply_tile(dst.get(), (geo.cout, hw), n, (g * mg, mg), (oy * wo, wo)) };
    });
    // SAFETY: the tasks cover every (image, group, output row), and the first tap's gemm
    // writes the row without reading it.
    unsafe { out.assume_filled() }
}
