//! The weight gradient of a grouped 3x3 convolution (ResNeXt's: 4 to 32 channels per group),
//! directly, without im2col.
//!
//! `dW[co, ci, ky, kx] = sum_{n, oy, ox} dY[n, co, oy, ox] * x_pad[n, ci, oy*s + ky, ox*s + kx]`.
//! As im2col + gemm this is one gemm per group with only 4 to 32 rows, too thin for the
//! gemm's register blocking, after a copy of 9x the input. Here the input is laid out once per
//! (image, group) as the forward's direct kernel lays it out (`direct::prepare`: padded and
//! split by column phase, so every tap of a run of output pixels is a run of floats), and
//! `CO x CI x 3` accumulators of 16 lanes (4 output channels, 2 input channels, the 3 column
//! taps of one kernel row) sweep a chunk of output rows: per 16 output pixels, 4 loads of the
//! gradient and 6 of the input feed 24 fused multiply-adds. Each accumulator is summed across
//! its lanes once per chunk. AVX-512 only; other CPUs take the im2col path.
use rayon::prelude::*;

use super::direct::{prepare, Prepared};
use super::im2col::Geometry;

/// Output channels per register block.
const CO: usize = 4;
/// Input channels per register block.
const CI: usize = 2;
/// Floats per vector.
const LANES: usize = 16;
/// Output pixels per chunk: the chunk's gradient and input rows of one group stay in L2.
const CHUNK_PIXELS: usize = 4096;

/// Whether [`weight_grad_direct`] takes this convolution: grouped 3x3s, stride 1 or 2, at most
/// 32 input channels per group, channel counts that fill the register block, on a CPU with
/// AVX-512.
pub(super) fn prefer_direct_dw(geo: &Geometry) -> bool {
    geo.groups > 1
        && geo.k == 3
        && geo.stride <= 2
        && geo.cg() <= 32
        && geo.cg().is_multiple_of(CI)
        && geo.mg().is_multiple_of(CO)
        && has_avx512()
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dW` of the convolution `geo` from its input `x: [N, Cin, H, W]` and output gradient
/// `grad: [N, Cout, Ho, Wo]` (both contiguous) -> `[Cout, Cin/G, 3, 3]`. One task per group;
/// only for convolutions [`prefer_direct_dw`] takes.
pub(super) fn weight_grad_direct(geo: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert!(
        prefer_direct_dw(geo),
        "weight_grad_direct: unsupported {geo:?}"
    );
    let per_group = geo.mg() * geo.cg() * 9;
    let mut dw = vec![0f32; geo.groups * per_group];
    dw.par_chunks_mut(per_group).enumerate().for_each_init(
        || (Vec::new(), Vec::new()),
        |(xbuf, gbuf), (g, dw_g)| {
            for n in 0..geo.n {
                let prepared = prepare(geo, x, (n, g), xbuf);
                let wd = pad_grad(geo, grad, (n, g), gbuf);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `prefer_direct_dw` (asserted above) checked that the CPU has
                // avx512f; the buffers are the ones `prepare` and `pad_grad` sized.
                unsafe {
                    accumulate_avx512(geo, (xbuf, prepared), (gbuf, wd), dw_g)
                };
            }
        },
    );
    dw
}

/// Copies group `g`'s output gradient of image `n` into `buf` as `[Cout/G, Ho, wd]`, each row
/// zero-padded to `wd` (`Wo` rounded up to whole vectors) so that a vector past the last
/// output pixel multiplies zeros. Returns `wd`.
fn pad_grad(geo: &Geometry, grad: &[f32], (n, g): (usize, usize), buf: &mut Vec<f32>) -> usize {
    let (mg, ho, wo) = (geo.mg(), geo.ho, geo.wo);
    let wd = wo.next_multiple_of(LANES);
    buf.clear();
    buf.resize(mg * ho * wd, 0.0);
    let src = &grad[(n * geo.cout + g * mg) * ho * wo..][..mg * ho * wo];
    for (dst, src) in buf.chunks_exact_mut(wd).zip(src.chunks_exact(wo)) {
        dst[..wo].copy_from_slice(src);
    }
    wd
}

/// Adds one image's contribution to group `g`'s `dW` (`dw_g: [Cout/G, Cin/G, 3, 3]`).
///
/// # Safety
/// The CPU must have avx512f. `x` must be a [`prepare`]d input of this geometry and `d` a
/// [`pad_grad`]ded gradient of row length `wd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate_avx512(
    geo: &Geometry,
    (x, prep): (&[f32], Prepared),
    (d, wd): (&[f32], usize),
    dw_g: &mut [f32],
) {
    use std::arch::x86_64::{__m512, _mm512_setzero_ps};
    use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_loadu_ps, _mm512_reduce_add_ps};
    let (s, ho, cg, mg) = (geo.stride, geo.ho, geo.cg(), geo.mg());
    let Prepared { hp, wq } = prep;
    // The furthest reads below: the last vector of a gradient row, and of the input row of
    // the last channel, phase and row at column offset 2 / s. `wq` covers `wd + 2 / s`.
    assert!(d.len() >= mg * ho * wd && wq >= wd + 2 / s);
    assert!(x.len() >= cg * s * hp * wq && (ho - 1) * s + 2 < hp);
    let rows_per_chunk = (CHUNK_PIXELS / wd).max(1);
    for r0 in (0..ho).step_by(rows_per_chunk) {
        let r1 = (r0 + rows_per_chunk).min(ho);
        for co0 in (0..mg).step_by(CO) {
            for ci0 in (0..cg).step_by(CI) {
                for ky in 0..3 {
                    let mut acc = [[[_mm512_setzero_ps(); 3]; CI]; CO];
                    for oy in r0..r1 {
                        let d_rows: [*const f32; CO] =
                            std::array::from_fn(|c| d[((co0 + c) * ho + oy) * wd..].as_ptr());
                        let x_rows: [[*const f32; 3]; CI] = std::array::from_fn(|i| {
                            std::array::from_fn(|kx| {
                                let row = ((ci0 + i) * s + kx % s) * hp + oy * s + ky;
                                x[row * wq + kx / s..].as_ptr()
                            })
                        });
                        for xo in (0..wd).step_by(LANES) {
                            // SAFETY: the asserts above bound every row start plus `wd`.
                            let dv: [__m512; CO] = std::array::from_fn(|c| unsafe {
                                _mm512_loadu_ps(d_rows[c].add(xo))
                            });
                            for (acc_i, x_row) in x_rows.iter().enumerate() {
                                for (kx, &x_ptr) in x_row.iter().enumerate() {
                                    // SAFETY: as above.
                                    let xv = unsafe { _mm512_loadu_ps(x_ptr.add(xo)) };
                                    for c in 0..CO {
                                        acc[c][acc_i][kx] =
                                            _mm512_fmadd_ps(dv[c], xv, acc[c][acc_i][kx]);
                                    }
                                }
                            }
                        }
                    }
                    for (c, acc_c) in acc.iter().enumerate() {
                        for (i, acc_ci) in acc_c.iter().enumerate() {
                            let at = ((co0 + c) * cg + ci0 + i) * 9 + ky * 3;
                            for (kx, &v) in acc_ci.iter().enumerate() {
                                dw_g[at + kx] += _mm512_reduce_add_ps(v);
                            }
                        }
                    }
                }
            }
        }
    }
}
