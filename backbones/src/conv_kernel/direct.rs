//! Direct convolution for groups with few input channels (ResNeXt's grouped 3x3s: 4 to 32
//! channels per group), where an im2col + gemm has too little work per column to pay for the
//! copy and each group's gemm is too thin for the gemm's register blocking.
//!
//! Per (image, group): the group's input is copied once into a zero-padded buffer whose rows
//! are split by column phase (`j mod stride`), so that every tap reads a contiguous run for
//! stride 1 and 2 alike. Then `CB` output channels x `PX` output pixels are accumulated in
//! registers over (ci, ky, kx): one vector load feeds `CB` fused multiply-adds. Each finished
//! output row gets the epilogue while it is in cache. The inner loops are compiled for AVX-512
//! or AVX2 + FMA when the CPU has them (chosen at run time), else for the build's baseline.
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{Geometry, Unfilled};

/// Output pixels per register block (two AVX-512 vectors).
const PX: usize = 32;
/// Output channels per register block.
const CB: usize = 4;

/// Whether the direct kernel is used: grouped convs with at most 32 channels per group (stride
/// 1 or 2), and tiny dense ones. Not yet measured shape by shape against im2col + gemm (the
/// stride-2 and 16/32-channels-per-group cases went to im2col before; issue 13).
pub(super) fn prefer_direct(geo: &Geometry) -> bool {
    geo.stride <= 2 && ((geo.groups > 1 && geo.cg() <= 32) || geo.kk() <= 72)
}

/// `y[n, co] = sum_{ci in group, ky, kx} w[co, ci, ky, kx] * x_padded[n, ci, oy*s + ky, ox*s + kx]`,
/// one task per (image, group).
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin/G, k, k]` (both contiguous) -> `[N, Cout, Ho, Wo]`
pub(super) fn conv_direct(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    let (hw, mg) = (geo.hw_out(), geo.mg());
    let packed = pack_weights(geo, w);
    let mut out = Unfilled::new(geo.n * geo.cout * hw);
    out.slots()
        .par_chunks_mut(mg * hw)
        .enumerate()
        .for_each_init(Vec::new, |buf, (i, out_g)| {
            let task = Task {
                geo,
                n: i / geo.groups,
                g: i % geo.groups,
                x,
                w: &packed,
                ep,
            };
            task.run(buf, out_g);
        });
    // SAFETY: one task per (image, group) writes all of that group's output rows.
    unsafe { out.assume_filled() }
}

/// The weights of every group as `[G, ceil(mg / CB), Cin/G, k, k, CB]`, zero-padded to a
/// multiple of `CB` output channels, so the inner loop reads `CB` consecutive values.
fn pack_weights(geo: &Geometry, w: &[f32]) -> Vec<f32> {
    let (mg, cg, kk) = (geo.mg(), geo.cg(), geo.k * geo.k);
    let blocks = mg.div_ceil(CB);
    let mut packed = vec![0f32; geo.groups * blocks * cg * kk * CB];
    for g in 0..geo.groups {
        for co in 0..mg {
            for r in 0..cg * kk {
                let (b, c) = (co / CB, co % CB);
                packed[((g * blocks + b) * cg * kk + r) * CB + c] =
                    w[((g * mg + co) * cg) * kk + r];
            }
        }
    }
    packed
}

/// One (image, group) of [`conv_direct`].
struct Task<'a> {
    geo: &'a Geometry,
    n: usize,
    g: usize,
    x: &'a [f32],
    w: &'a [f32],
    ep: &'a Epilogue<'a>,
}

/// The padded, phase-split input of one group: `[Cin/G, s, Hp, wq]`.
pub(super) struct Prepared {
    /// Padded rows, `H + 2 * pad`.
    pub hp: usize,
    /// Floats per stored row: at least `Wo` rounded up to `PX`, plus `(k - 1) / s + 1`.
    pub wq: usize,
}

/// Copies group `g`'s channels of image `n` of `x` into `buf` as [`Prepared`] describes:
/// padded column `j` of padded row `r` of channel `c` lands at `[c, j % s, r, j / s]`; every
/// other float is zero. A tap `(ky, kx)` of output pixel `(oy, ox)` is then at
/// `[c, kx % s, oy * s + ky, ox + kx / s]`, and a run of output pixels reads a run of floats.
#[inline(always)]
pub(super) fn prepare(
    geo: &Geometry,
    x: &[f32],
    (n, g): (usize, usize),
    buf: &mut Vec<f32>,
) -> Prepared {
    let (h, w, s, pad, cg) = (geo.h, geo.w, geo.stride, geo.pad, geo.cg());
    let hp = h + 2 * pad;
    // Widest read: column block wo_pad - PX, tap (k - 1) / s; the last padded input
    // column (j = (wo - 1) * s + k - 1 + (W + 2p - k) mod s) lands at most one further.
    let wq = geo.wo.next_multiple_of(PX) + (geo.k - 1) / s + 1;
    buf.clear();
    buf.resize(cg * s * hp * wq, 0.0);
    let slab = &x[(n * geo.c + g * cg) * h * w..][..cg * h * w];
    for c in 0..cg {
        for y in 0..h {
            let src = &slab[(c * h + y) * w..][..w];
            for (ix, &v) in src.iter().enumerate() {
                let j = ix + pad;
                buf[((c * s + j % s) * hp + y + pad) * wq + j / s] = v;
            }
        }
    }
    Prepared { hp, wq }
}

/// Where one register block sits: output row `oy`, first output column `x0`, in a
/// [`Prepared`] input of `hp` rows of `wq` floats.
#[derive(Clone, Copy)]
struct Block {
    oy: usize,
    x0: usize,
    hp: usize,
    wq: usize,
}

impl Task<'_> {
    fn run(&self, buf: &mut Vec<f32>, out_g: &mut [MaybeUninit<f32>]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { self.run_avx512(buf, out_g) };
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: as above.
                return unsafe { self.run_avx2(buf, out_g) };
            }
        }
        self.body(buf, out_g, |input, w_b, at| {
            self.accumulate(input, w_b, at, |a, b, c| a * b + c)
        })
    }

    /// AVX-512 with explicit intrinsics: the portable loop compiled for avx512f stayed scalar
    /// (perf: `vfmadd213ss` on stack accumulators, ~9 GFLOP/s and 41% of the X101 forward).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, buf: &mut Vec<f32>, out_g: &mut [MaybeUninit<f32>]) {
        // SAFETY: this function only runs where the CPU has avx512f (see `run`).
        self.body(buf, out_g, |input, w_b, at| unsafe {
            self.accumulate_avx512(input, w_b, at)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, buf: &mut Vec<f32>, out_g: &mut [MaybeUninit<f32>]) {
        self.body(buf, out_g, |input, w_b, at| {
            self.accumulate(input, w_b, at, f32::mul_add)
        })
    }

    /// One register block: `CB` output channels x `PX` output pixels from column `x0` of
    /// output row `oy`, summed over the group's channels and the k x k taps.
    #[inline(always)]
    fn accumulate(
        &self,
        input: &[f32],
        w_b: &[f32],
        at: Block,
        fma: impl Fn(f32, f32, f32) -> f32,
    ) -> [[f32; PX]; CB] {
        let (s, k, cg) = (self.geo.stride, self.geo.k, self.geo.cg());
        let mut acc = [[0f32; PX]; CB];
        for ci in 0..cg {
            for ky in 0..k {
                let row_y = at.oy * s + ky;
                for kx in 0..k {
                    let start = ((ci * s + kx % s) * at.hp + row_y) * at.wq + kx / s + at.x0;
                    let src: &[f32; PX] = input[start..start + PX].try_into().unwrap();
                    let wv: &[f32; CB] = w_b[((ci * k + ky) * k + kx) * CB..][..CB]
                        .try_into()
                        .unwrap();
                    for c in 0..CB {
                        for i in 0..PX {
                            acc[c][i] = fma(wv[c], src[i], acc[c][i]);
                        }
                    }
                }
            }
        }
        acc
    }

    /// [`Self::accumulate`] in AVX-512 registers: `CB x 2` accumulators of 16 lanes, one
    /// broadcast weight per channel feeding two fused multiply-adds. The same operations in
    /// the same order per output value as the portable loop, so the same results bit for bit.
    ///
    /// # Safety
    /// The CPU must have avx512f.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn accumulate_avx512(&self, input: &[f32], w_b: &[f32], at: Block) -> [[f32; PX]; CB] {
        use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps};
        use std::arch::x86_64::{_mm512_setzero_ps, _mm512_storeu_ps};
        const _: () = assert!(PX == 32, "two 16-lane vectors per block row");
        let (s, k, cg) = (self.geo.stride, self.geo.k, self.geo.cg());
        let mut acc = [[_mm512_setzero_ps(); 2]; CB];
        for ci in 0..cg {
            for ky in 0..k {
                let row_y = at.oy * s + ky;
                for kx in 0..k {
                    let start = ((ci * s + kx % s) * at.hp + row_y) * at.wq + kx / s + at.x0;
                    let src = &input[start..start + PX];
                    let wv = &w_b[((ci * k + ky) * k + kx) * CB..][..CB];
                    // SAFETY: `src` holds PX = 32 floats: two unaligned 16-float loads.
                    let (lo, hi) = unsafe {
                        (
                            _mm512_loadu_ps(src.as_ptr()),
                            _mm512_loadu_ps(src.as_ptr().add(16)),
                        )
                    };
                    for (acc, &w) in acc.iter_mut().zip(wv) {
                        let w = _mm512_set1_ps(w);
                        acc[0] = _mm512_fmadd_ps(w, lo, acc[0]);
                        acc[1] = _mm512_fmadd_ps(w, hi, acc[1]);
                    }
                }
            }
        }
        let mut out = [[0f32; PX]; CB];
        for (out, acc) in out.iter_mut().zip(&acc) {
            // SAFETY: `out` holds 32 floats: two unaligned 16-float stores.
            unsafe {
                _mm512_storeu_ps(out.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(out.as_mut_ptr().add(16), acc[1]);
            }
        }
        out
    }

    #[inline(always)]
    fn body(
        &self,
        buf: &mut Vec<f32>,
        out_g: &mut [MaybeUninit<f32>],
        accumulate: impl Fn(&[f32], &[f32], Block) -> [[f32; PX]; CB],
    ) {
        let geo = self.geo;
        let (k, cg, mg, wo, hw) = (geo.k, geo.cg(), geo.mg(), geo.wo, geo.hw_out());
        let Prepared { hp, wq } = prepare(geo, self.x, (self.n, self.g), buf);
        let input = &buf[..];
        let blocks = mg.div_ceil(CB);
        let w_g = &self.w[self.g * blocks * cg * k * k * CB..][..blocks * cg * k * k * CB];
        for oy in 0..geo.ho {
            for b in 0..blocks {
                let w_b = &w_g[b * cg * k * k * CB..][..cg * k * k * CB];
                for x0 in (0..wo).step_by(PX) {
                    let acc = accumulate(input, w_b, Block { oy, x0, hp, wq });
                    let valid = PX.min(wo - x0);
                    for (c, a) in acc.iter().enumerate().take(mg.saturating_sub(b * CB)) {
                        out_g[(b * CB + c) * hw + oy * wo + x0..][..valid]
                            .write_copy_of_slice(&a[..valid]);
                    }
                }
                for co in b * CB..mg.min(b * CB + CB) {
                    let co_all = self.g * mg + co;
                    // SAFETY: the column blocks above wrote all `wo` pixels of this row.
                    let row = unsafe { out_g[co * hw + oy * wo..][..wo].assume_init_mut() };
                    self.ep
                        .apply_row(row, co_all, (self.n * geo.cout + co_all) * hw + oy * wo);
                }
            }
        }
    }
}
