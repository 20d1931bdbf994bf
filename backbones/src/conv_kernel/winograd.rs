//! Winograd for dense stride-1 3x3 convolutions with >= 64 input channels: which convs take
//! it ([`prefer_winograd`]), the tile helpers shared with the F(4x4, 3x3) forward
//! (`winograd4`), and the weight gradient in F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms
//! for Convolutional Neural Networks"): the forward of a 2x2 output tile is
//! `Y = A^T [ (G g G^T) . (B^T d B) ] A` for its 4x4 input tile `d` and the 3x3 filter `g`, 16
//! instead of 36 multiplies per input channel, and [`weight_grad_winograd`] differentiates it.
//! The tile transforms work on a run of tiles along one tile row at a time, one pass per
//! element, so that they vectorise (one tile at a time they were scalar code with strided
//! stores).
use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::im2col::{matmul, Geometry, Unfilled};

/// Whether this kernel applies: dense, stride 1, 3x3, enough channels for the gemms.
pub(super) fn prefer_winograd(geo: &Geometry) -> bool {
    geo.groups == 1 && geo.stride == 1 && geo.k == 3 && geo.c >= 64
}

/// Tiles per chunk: the transformed input and product of a chunk (`16 x C x tiles` floats
/// each) stay at a few MiB.
const TILES_PER_CHUNK: usize = 256;

/// The work units of a Winograd pass: `(image, first tile, tiles)`, at most
/// `TILES_PER_CHUNK` tiles of one image each (tile `t` is tile row `t / tw`, column `t % tw`).
fn tile_chunks(geo: &Geometry) -> Vec<(usize, usize, usize)> {
    let tiles = geo.ho.div_ceil(2) * geo.wo.div_ceil(2);
    (0..geo.n)
        .flat_map(|n| {
            (0..tiles)
                .step_by(TILES_PER_CHUNK)
                .map(move |t0| (n, t0, TILES_PER_CHUNK.min(tiles - t0)))
        })
        .collect()
}

/// The runs of tiles `t0..t0 + len` (tile `t` is tile row `t / tw`, column `t % tw`) that
/// lie in one tile row: `(offset in the chunk, tile row, first tile column, tiles)`.
pub(super) fn row_runs(
    t0: usize,
    len: usize,
    tw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut t = 0;
    std::iter::from_fn(move || {
        if t >= len {
            return None;
        }
        let (ty, tx0) = ((t0 + t) / tw, (t0 + t) % tw);
        let seg = (tw - tx0).min(len - t);
        let run = (t, ty, tx0, seg);
        t += seg;
        Some(run)
    })
}

/// `B^T d B` of `seg` consecutive tiles of one tile row, tile `k` being `rows[i][2k + j]`
/// (`i, j < 4`, each row `2 * seg + 2` floats): element `e = 4 * i + j` of tile `k` goes to
/// `out[e][at + k]`. `B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`.
/// Each row of `B^T d` is first combined and split into even and odd columns, so that every
/// output element is one pass of contiguous loads and stores, which the compiler vectorises.
#[inline(always)]
fn input_transform_run(
    rows: &[Vec<f32>; 4],
    seg: usize,
    (even, odd): (&mut Vec<f32>, &mut Vec<f32>),
    out: &mut [&mut [MaybeUninit<f32>]],
    at: usize,
) {
    let r: [&[f32]; 4] = std::array::from_fn(|i| &rows[i][..2 * seg + 2]);
    // Row i of B^T d: r[p] + sign * r[q].
    for (i, (p, q, sign)) in [(0, 2, -1.0), (1, 2, 1.0), (2, 1, -1.0), (1, 3, -1.0)]
        .into_iter()
        .enumerate()
    {
        even.clear();
        odd.clear();
        for (a, b) in r[p].chunks_exact(2).zip(r[q].chunks_exact(2)) {
            even.push(a[0] + sign * b[0]);
            odd.push(a[1] + sign * b[1]);
        }
        // Tile k reads columns 2k..2k + 4 of the row: even[k], odd[k], even[k + 1], odd[k + 1].
        let (e0, e1, o0, o1) = (&even[..seg], &even[1..=seg], &odd[..seg], &odd[1..=seg]);
        let [c0, c1, c2, c3] = &mut out[4 * i..4 * i + 4] else {
            unreachable!("16 output planes")
        };
        let (c0, c1) = (&mut c0[at..at + seg], &mut c1[at..at + seg]);
        let (c2, c3) = (&mut c2[at..at + seg], &mut c3[at..at + seg]);
        for k in 0..seg {
            c0[k].write(e0[k] - e1[k]);
            c1[k].write(o0[k] + e1[k]);
            c2[k].write(e1[k] - o0[k]);
            c3[k].write(o0[k] - o1[k]);
        }
    }
}

/// Copies rows `y0..y0 + rows.len()`, columns `x0..x0 + cols` of `plane` (`[h, w]`) into
/// `rows`, zeros where they fall outside the plane (the padding, or past the last tile).
pub(super) fn gather_rows(
    plane: &[f32],
    (h, w): (usize, usize),
    (y0, x0): (isize, isize),
    cols: usize,
    rows: &mut [Vec<f32>],
) {
    for (i, row) in rows.iter_mut().enumerate() {
        row.clear();
        row.resize(cols, 0.0);
        let y = y0 + i as isize;
        if y < 0 || y >= h as isize {
            continue;
        }
        let src = &plane[y as usize * w..][..w];
        let lo = (-x0).max(0) as usize;
        let hi = ((w as isize - x0).max(0) as usize).min(cols);
        if lo < hi {
            let first = (x0 + lo as isize) as usize;
            row[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        }
    }
}

/// `B^T d B` of tiles `t0..t0 + len` of one image `img: [Cin, H, W]`: `[16, Cin, len]`.
fn transform_input(geo: &Geometry, img: &[f32], (t0, len): (usize, usize)) -> Vec<f32> {
    let (cin, h, wd, pad, tw) = (geo.c, geo.h, geo.w, geo.pad as isize, geo.wo.div_ceil(2));
    let mut v = Unfilled::new(16 * cin * len);
    let mut planes: Vec<&mut [MaybeUninit<f32>]> = v.slots().chunks_mut(cin * len).collect();
    let mut rows = [const { Vec::new() }; 4];
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for ic in 0..cin {
        let plane = &img[ic * h * wd..][..h * wd];
        for (t, ty, tx0, seg) in row_runs(t0, len, tw) {
            // The 4 input rows under this run of tiles: tile tx0 + k reads row[2k .. 2k + 4].
            let at = ((2 * ty) as isize - pad, (2 * tx0) as isize - pad);
            gather_rows(plane, (h, wd), at, 2 * seg + 2, &mut rows);
            let scratch = (&mut even, &mut odd);
            input_transform_run(&rows, seg, scratch, &mut planes, ic * len + t);
        }
    }
    // SAFETY: the runs cover tiles 0..len of every channel, each writing all 16 planes.
    unsafe { v.assume_filled() }
}

/// `A dY A^T` of tiles `t0..t0 + len` of one image's output gradient `dy: [Cout, Ho, Wo]`,
/// zero past the last row or column: `[16, Cout, len]`. `A = [[1,0],[1,1],[1,-1],[0,-1]]`.
fn transform_grad(geo: &Geometry, dy: &[f32], (t0, len): (usize, usize)) -> Vec<f32> {
    let (cout, ho, wo, tw) = (geo.cout, geo.ho, geo.wo, geo.wo.div_ceil(2));
    let mut dm = Unfilled::new(16 * cout * len);
    let mut planes: Vec<&mut [MaybeUninit<f32>]> = dm.slots().chunks_mut(cout * len).collect();
    let mut rows = [const { Vec::new() }; 2];
    for oc in 0..cout {
        let plane = &dy[oc * ho * wo..][..ho * wo];
        for (t, ty, tx0, seg) in row_runs(t0, len, tw) {
            gather_rows(
                plane,
                (ho, wo),
                ((2 * ty) as isize, (2 * tx0) as isize),
                2 * seg,
                &mut rows,
            );
            let (r0, r1) = (&rows[0][..2 * seg], &rows[1][..2 * seg]);
            let out: [&mut [MaybeUninit<f32>]; 16] = {
                let mut it = planes.iter_mut();
                std::array::from_fn(|_| {
                    let plane = it.next().expect("16 planes");
                    &mut plane[oc * len + t..][..seg]
                })
            };
            for k in 0..seg {
                // A y: rows y0, y0 + y1, y0 - y1, -y1 (each a pair of columns) ...
                let (a, b) = ((r0[2 * k], r0[2 * k + 1]), (r1[2 * k], r1[2 * k + 1]));
                let ay = [
                    a,
                    (a.0 + b.0, a.1 + b.1),
                    (a.0 - b.0, a.1 - b.1),
                    (-b.0, -b.1),
                ];
                // ... then (A y) A^T on each row: c0, c0 + c1, c0 - c1, -c1.
                for (i, (c0, c1)) in ay.into_iter().enumerate() {
                    for (j, val) in [c0, c0 + c1, c0 - c1, -c1].into_iter().enumerate() {
                        out[4 * i + j][k].write(val);
                    }
                }
            }
        }
    }
    // SAFETY: the runs cover tiles 0..len of every output channel, each writing all 16 planes.
    unsafe { dm.assume_filled() }
}

/// `dW` of a convolution [`prefer_winograd`] takes, from its input `x: [N, Cin, H, W]` and
/// output gradient `grad: [N, Cout, Ho, Wo]` -> `[Cout, Cin, 3, 3]`, in the Winograd domain:
/// the forward is `Y = A^T [ U . V ] A` with `U = G g G^T`, so `dU = sum over tiles of
/// (A dY A^T) . V`, which is 16 gemms `[Cout, tiles] x [tiles, Cin]`, and `dg = G^T dU G`.
/// 16 instead of 36 multiplies per 2x2 output tile, as in the forward.
pub(super) fn weight_grad_winograd(geo: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (cin, cout, h, wd) = (geo.c, geo.cout, geo.h, geo.w);
    let du = tile_chunks(geo)
        .par_iter()
        .fold(
            || vec![0f32; 16 * cout * cin],
            |mut du, &(n, t0, len)| {
                let v = transform_input(geo, &x[n * cin * h * wd..][..cin * h * wd], (t0, len));
                let dy = &grad[n * cout * geo.ho * geo.wo..][..cout * geo.ho * geo.wo];
                let dm = transform_grad(geo, dy, (t0, len));
                for e in 0..16 {
                    // dU[e] += dM[e] ([Cout, len]) x V[e]^T ([len, Cin]).
                    unsafe {
                        matmul(
                            (cout, cin, len),
                            du.as_mut_ptr().add(e * cout * cin),
                            cin,
                            true,
                            dm.as_ptr().add(e * cout * len),
                            (len, 1),
                            v.as_ptr().add(e * cin * len),
                            (1, len),
                            Parallelism::None,
                        );
                    }
                }
                du
            },
        )
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0f32; 16 * cout * cin]);
    // dg = G^T dU G, G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]: G^T combines rows
    // (u0 + .5 u1 + .5 u2, .5 u1 - .5 u2, .5 u1 + .5 u2 + u3), then the same on columns.
    let gt = |u: [f32; 4]| {
        [
            u[0] + 0.5 * (u[1] + u[2]),
            0.5 * (u[1] - u[2]),
            0.5 * (u[1] + u[2]) + u[3],
        ]
    };
    let mut dw = vec![0f32; cout * cin * 9];
    for oc in 0..cout {
        for ic in 0..cin {
            let at = |e: usize| du[(e * cout + oc) * cin + ic];
            // Rows of G^T dU: [3][4].
            let rows: [[f32; 4]; 3] = {
                let cols: [[f32; 3]; 4] =
                    std::array::from_fn(|j| gt([at(j), at(4 + j), at(8 + j), at(12 + j)]));
                std::array::from_fn(|p| std::array::from_fn(|j| cols[j][p]))
            };
            for (p, row) in rows.into_iter().enumerate() {
                for (q, val) in gt(row).into_iter().enumerate() {
                    dw[(oc * cin + ic) * 9 + p * 3 + q] = val;
                }
            }
        }
    }
    dw
}
