//! Winograd F(2x2, 3x3) for dense stride-1 3x3 convolutions (the FPN's output convs): each
//! 2x2 output tile costs 16 instead of 36 multiplies per input channel (Lavin & Gray 2016,
//! "Fast Algorithms for Convolutional Neural Networks"):
//! `Y = A^T [ (G g G^T) . (B^T d B) ] A` for a 4x4 input tile `d` and 3x3 filter `g`; the
//! channel sums of the 16 elementwise products are 16 gemms `[Cout, Cin] x [Cin, tiles]`.
use gemm::Parallelism;
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{matmul, Geometry, SyncPtr};

/// Whether this kernel applies: dense, stride 1, 3x3, enough channels for the gemms.
pub(super) fn prefer_winograd(geo: &Geometry) -> bool {
    geo.groups == 1 && geo.stride == 1 && geo.k == 3 && geo.c >= 64
}

/// Tiles per chunk: the transformed input and product of a chunk (`16 x C x tiles` floats
/// each) stay at a few MiB.
const TILES_PER_CHUNK: usize = 256;

/// `G g G^T` for every (co, ci): `[16, Cout, Cin]`.
// Column loops index several 4x4 arrays at once; index form mirrors the matrix algebra.
#[allow(clippy::needless_range_loop)]
fn transform_filters(geo: &Geometry, w: &[f32]) -> Vec<f32> {
    let (cout, cin) = (geo.cout, geo.c);
    let mut u = vec![0f32; 16 * cout * cin];
    for oc in 0..cout {
        for ic in 0..cin {
            let g = &w[(oc * cin + ic) * 9..][..9];
            let mut gg = [[0f32; 3]; 4]; // G g: [4, 3]
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                gg[0][j] = g0;
                gg[1][j] = 0.5 * (g0 + g1 + g2);
                gg[2][j] = 0.5 * (g0 - g1 + g2);
                gg[3][j] = g2;
            }
            for (i, row) in gg.iter().enumerate() {
                let t = [
                    row[0],
                    0.5 * (row[0] + row[1] + row[2]),
                    0.5 * (row[0] - row[1] + row[2]),
                    row[2],
                ];
                for (j, v) in t.iter().enumerate() {
                    u[((i * 4 + j) * cout + oc) * cin + ic] = *v;
                }
            }
        }
    }
    u
}

/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin, 3, 3]` (both contiguous) -> `[N, Cout, Ho, Wo]`
#[allow(clippy::needless_range_loop)] // as above
pub(super) fn conv_winograd(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    let (cin, cout, h, wd, pad) = (geo.c, geo.cout, geo.h, geo.w, geo.pad as isize);
    let (ho, wo) = (geo.ho, geo.wo);
    let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
    let u = transform_filters(geo, w);
    let mut out = vec![0f32; geo.n * cout * ho * wo];
    let dst = SyncPtr(out.as_mut_ptr());
    let tiles = th * tw;
    let chunks: Vec<(usize, usize)> = (0..geo.n)
        .flat_map(|n| (0..tiles).step_by(TILES_PER_CHUNK).map(move |t0| (n, t0)))
        .collect();
    chunks.par_iter().for_each(|&(n, t0)| {
        let len = TILES_PER_CHUNK.min(tiles - t0);
        let img = &x[n * cin * h * wd..][..cin * h * wd];
        let mut v = vec![0f32; 16 * cin * len]; // [16, Cin, len]
        for ic in 0..cin {
            let plane = &img[ic * h * wd..][..h * wd];
            for t in 0..len {
                let (ty, tx) = ((t0 + t) / tw, (t0 + t) % tw);
                let mut d = [[0f32; 4]; 4];
                for (i, row) in d.iter_mut().enumerate() {
                    let iy = (2 * ty + i) as isize - pad;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for (j, val) in row.iter_mut().enumerate() {
                        let ix = (2 * tx + j) as isize - pad;
                        if ix >= 0 && ix < wd as isize {
                            *val = plane[iy as usize * wd + ix as usize];
                        }
                    }
                }
                // B^T d B, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
                let mut bd = [[0f32; 4]; 4];
                for j in 0..4 {
                    bd[0][j] = d[0][j] - d[2][j];
                    bd[1][j] = d[1][j] + d[2][j];
                    bd[2][j] = d[2][j] - d[1][j];
                    bd[3][j] = d[1][j] - d[3][j];
                }
                for (i, r) in bd.iter().enumerate() {
                    let e = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
                    for (j, val) in e.iter().enumerate() {
                        v[((i * 4 + j) * cin + ic) * len + t] = *val;
                    }
                }
            }
        }
        let mut m = vec![0f32; 16 * cout * len]; // [16, Cout, len]
        for e in 0..16 {
            unsafe {
                let (m_e, u_e, v_e) = (
                    m.as_mut_ptr().add(e * cout * len),
                    u.as_ptr().add(e * cout * cin),
                    v.as_ptr().add(e * cin * len),
                );
                matmul(
                    (cout, len, cin),
                    m_e,
                    len,
                    false,
                    u_e,
                    (cin, 1),
                    v_e,
                    (len, 1),
                    Parallelism::None,
                );
            }
        }
        for oc in 0..cout {
            for t in 0..len {
                let (ty, tx) = ((t0 + t) / tw, (t0 + t) % tw);
                let mv = |i: usize, j: usize| m[((i * 4 + j) * cout + oc) * len + t];
                // A^T m A, A^T = [[1,1,1,0],[0,1,-1,-1]].
                let mut am = [[0f32; 4]; 2];
                for j in 0..4 {
                    am[0][j] = mv(0, j) + mv(1, j) + mv(2, j);
                    am[1][j] = mv(1, j) - mv(2, j) - mv(3, j);
                }
                for (i, r) in am.iter().enumerate() {
                    let y = [r[0] + r[1] + r[2], r[1] - r[2] - r[3]];
                    let oy = 2 * ty + i;
                    for (j, val) in y.iter().enumerate() {
                        let ox = 2 * tx + j;
                        if oy < ho && ox < wo {
                            // Chunks cover disjoint tiles, so disjoint output pixels.
                            unsafe { *dst.get().add(((n * cout + oc) * ho + oy) * wo + ox) = *val };
                        }
                    }
                }
            }
        }
    });
    // Tiles write 2x2 blocks, not rows: the epilogue is one parallel pass afterwards.
    ep.apply_all(&mut out, geo);
    out
}
