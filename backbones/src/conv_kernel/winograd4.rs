//! Winograd F(4x4, 3x3), the forward of dense stride-1 3x3 convolutions (ResNet's 3x3s, the
//! FPN's output convs, the RPN conv, and their dX): each 4x4 output tile costs 36 instead of
//! 144 multiplies per input channel, against 16 per 2x2 tile (64 per 4x4) for F(2x2, 3x3)
//! (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks", with the points
//! 0, 1, -1, 2, -2 and infinity):
//! `Y = A^T [ (G g G^T) . (B^T d B) ] A` for a 6x6 input tile `d` and 3x3 filter `g`; the
//! channel sums of the 36 elementwise products are 36 gemms `[Cout, Cin] x [Cin, tiles]`.
//! The weight gradient stays in F(2x2, 3x3) (`winograd`; an F(4x4) dW was not tried).
//!
//! Rounding: the transforms scale values by up to 8 (`A^T`) and 5 (`B^T`) before they cancel,
//! so outputs carry about ten times F(2x2)'s rounding. Measured against candle's direct conv,
//! relative to the largest output: <= 1.03e-5 over 40 runs of the `conv_kernel` tests (F(2x2)
//! and direct sums <= 1.1e-6), and through 10 stacked 3x3 + ReLU layers at 40x60 about 4e-6
//! (64 channels), 6-12e-6 (256) and 1e-5 (512) at every depth, not growing (F(2x2): 0.4-2e-6).
//!
//! The tile transforms work on a run of tiles along one tile row at a time, one contiguous
//! pass per element: each transformed input row is first split by column modulo 4, so that
//! tile `k`'s six columns `4k..4k + 6` are element `k` of six arrays.
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::TensorId;
use gemm::Parallelism;
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{matmul, Geometry, Unfilled};
use super::winograd::{gather_rows, row_runs};

/// Tiles per chunk at most: a chunk's transformed input and products (`36 x C x tiles` floats
/// each) stay near 4 MiB for C = 256 or more (`cache_bound` below).
const MAX_TILES_PER_CHUNK: usize = 128;
/// Tiles per chunk at least, so that each of the 36 gemms has a few microkernel rows.
const MIN_TILES_PER_CHUNK: usize = 32;
/// Output channels per task at least, when small maps split the output channels.
const MIN_COUT_PER_TASK: usize = 64;

/// One task: tiles `t0..t0 + len` of image `n` (tile `t` is tile row `t / tw`, column
/// `t % tw`), output channels `oc0..oc0 + ocn`.
#[derive(Clone, Copy)]
struct Task {
    n: usize,
    t0: usize,
    len: usize,
    oc0: usize,
    ocn: usize,
}

/// The tasks of a pass. Small maps (ResNet's last stage, P5) have too few tiles to give every
/// thread a few chunks: their output channels are split as well, each task transforming its
/// own tiles' input (cheap against its gemms for such wide layers).
fn tasks(geo: &Geometry) -> Vec<Task> {
    let tiles = geo.ho.div_ceil(4) * geo.wo.div_ceil(4);
    let cache_bound = ((1 << 20) / (36 * geo.c.max(geo.cout))).next_multiple_of(16);
    let per = cache_bound.clamp(MIN_TILES_PER_CHUNK, MAX_TILES_PER_CHUNK);
    let chunks = geo.n * tiles.div_ceil(per);
    let want = 4 * rayon::current_num_threads();
    let parts = want
        .div_ceil(chunks)
        .min(geo.cout / MIN_COUT_PER_TASK)
        .max(1);
    let ocn = geo.cout.div_ceil(parts).next_multiple_of(16).min(geo.cout);
    let mut out = Vec::new();
    for n in 0..geo.n {
        for t0 in (0..tiles).step_by(per) {
            for oc0 in (0..geo.cout).step_by(ocn) {
                out.push(Task {
                    n,
                    t0,
                    len: per.min(tiles - t0),
                    oc0,
                    ocn: ocn.min(geo.cout - oc0),
                });
            }
        }
    }
    out
}

/// `G x` for one column `x` of a 3x3 filter, `G = [[1/4, 0, 0], [-1/6, -1/6, -1/6],
/// [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]`.
#[inline(always)]
fn g_times([x0, x1, x2]: [f32; 3]) -> [f32; 6] {
    const SIXTH: f32 = 1.0 / 6.0;
    let (a, b) = (x0 + x2, x0 * 0.25 + x2);
    [
        0.25 * x0,
        -SIXTH * (a + x1),
        -SIXTH * (a - x1),
        SIXTH * (b + 0.5 * x1),
        SIXTH * (b - 0.5 * x1),
        x2,
    ]
}

/// `B^T x` for one 6-vector, `B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
/// [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]`.
#[inline(always)]
fn bt_times(x: [f32; 6]) -> [f32; 6] {
    let (a, b) = (x[4] - 4.0 * x[2], x[3] - 4.0 * x[1]);
    let (c, d) = (x[4] - x[2], 2.0 * (x[3] - x[1]));
    [
        4.0 * x[0] - 5.0 * x[2] + x[4],
        a + b,
        a - b,
        c + d,
        c - d,
        4.0 * x[1] - 5.0 * x[3] + x[5],
    ]
}

/// `A^T y` for one 6-vector, `A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0],
/// [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]`.
#[inline(always)]
fn at_times(y: [f32; 6]) -> [f32; 4] {
    let (a, b) = (y[1] + y[2], y[1] - y[2]);
    let (c, d) = (y[3] + y[4], y[3] - y[4]);
    [y[0] + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + y[5]]
}

/// `G g G^T` for every (co, ci): `[36, Cout, Cin]`, one task per output channel. The task
/// first splits its `[Cin, 9]` filters into 9 arrays over `ci`, so that the transform is one
/// vectorised pass over `ci` with contiguous loads and stores.
fn transform_filters(geo: &Geometry, w: &[f32]) -> Vec<f32> {
    let (cout, cin) = (geo.cout, geo.c);
    let mut u = Unfilled::new(36 * cout * cin);
    let dst = u.ptr();
    (0..cout)
        .into_par_iter()
        .for_each_init(Vec::new, |taps: &mut Vec<f32>, oc| {
            taps.clear();
            taps.resize(9 * cin, 0.0);
            for (ic, g) in w[oc * cin * 9..][..cin * 9].chunks_exact(9).enumerate() {
                for (q, &v) in g.iter().enumerate() {
                    taps[q * cin + ic] = v;
                }
            }
            let g: [&[f32]; 9] = std::array::from_fn(|q| &taps[q * cin..][..cin]);
            // SAFETY: task `oc` alone writes rows `(e, oc)`, each `cin` floats, of the output.
            let rows: [&mut [MaybeUninit<f32>]; 36] = std::array::from_fn(|e| unsafe {
                std::slice::from_raw_parts_mut(dst.get().add((e * cout + oc) * cin).cast(), cin)
            });
            for ic in 0..cin {
                // G g: [6, 3], one column at a time; then each of its rows times G^T.
                let cols: [[f32; 6]; 3] =
                    std::array::from_fn(|j| g_times([g[j][ic], g[3 + j][ic], g[6 + j][ic]]));
                for i in 0..6 {
                    let row = g_times([cols[0][i], cols[1][i], cols[2][i]]);
                    for (j, v) in row.into_iter().enumerate() {
                        rows[i * 6 + j][ic].write(v);
                    }
                }
            }
        });
    // SAFETY: the tasks wrote every (element, co, ci).
    unsafe { u.assume_filled() }
}

/// The Winograd-domain filters (`G g G^T`, `[36, Cout, Cin]`) of one inference conv, kept
/// between calls: transforming them once per conv per image made a ResNet-50 predict forward
/// 7% slower (1.25 against 1.16 s, time_step). Keyed by the weight tensor's id. Only the
/// inference entry ([`super::conv2d_fused`]) consults it, whose weights need no gradient: in
/// this codebase such a tensor never changes (frozen weights are plain tensors fixed at build
/// time, trainable ones are `Var`s and take the trainable entry), so its id names its values.
/// Holds 4x the floats of the 3x3 weight it caches (36 against 9 per filter): 47 MB for an
/// X101-FPN detector (FPN and RPN), 178 MB for ResNet-50-FPN (its 3x3s too).
#[derive(Default)]
pub struct FilterCache(Mutex<Option<(TensorId, Arc<Vec<f32>>)>>);

impl FilterCache {
    /// The transformed filters of the weight `id`, computed by `transform` unless cached. The
    /// lock is not held while `transform` runs (it runs rayon tasks, and a task this thread
    /// picks up meanwhile may ask for the same conv); two threads may then both compute it.
    fn get_or_insert(&self, id: TensorId, transform: impl FnOnce() -> Vec<f32>) -> Arc<Vec<f32>> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, u)) = &*lock() {
            if *cached == id {
                return u.clone();
            }
        }
        let u = Arc::new(transform());
        *lock() = Some((id, u.clone()));
        u
    }
}

impl std::fmt::Debug for FilterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilterCache")
    }
}

/// Fills `cache` with the filters of weight `id` (`w`, contiguous) when a conv of this
/// geometry runs here; else does nothing.
pub(super) fn prepare_winograd(cache: &FilterCache, id: TensorId, geo: &Geometry, w: &[f32]) {
    if super::winograd::prefer_winograd(geo) {
        cache.get_or_insert(id, || transform_filters(geo, w));
    }
}

/// Where [`conv_winograd`] may find or keep its transformed filters: the cache and the id of
/// the weight.
#[derive(Clone, Copy)]
pub(super) struct CachedFilters<'a> {
    pub cache: &'a FilterCache,
    pub weight: TensorId,
}

/// The first `len` floats of a scratch buffer, grown when needed but never cleared: every
/// caller writes all `len` of them before reading any.
fn scratch_of(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Scratch of [`input_transform_run`]: the 6 rows of `B^T d` and their columns split by
/// column modulo 4.
#[derive(Default)]
struct InputScratch {
    combined: [Vec<f32>; 6],
    phases: Vec<f32>,
}

/// `B^T d B` of `seg` consecutive tiles of one tile row, tile `k` being `rows[i][4k + j]`
/// (`i, j < 6`; each row at least `4 * seg + 4` floats): element `e = 6 * i + j` of tile `k`
/// goes to `out[e][at + k]`.
#[inline(always)]
fn input_transform_run(
    rows: &[Vec<f32>; 6],
    seg: usize,
    scratch: &mut InputScratch,
    out: &mut [&mut [MaybeUninit<f32>]],
    at: usize,
) {
    let (s1, cols) = (seg + 1, 4 * (seg + 1));
    // Rows of B^T d: one contiguous pass over the 6 input rows.
    let r: [&[f32]; 6] = std::array::from_fn(|i| &rows[i][..cols]);
    {
        let [c0, c1, c2, c3, c4, c5] = scratch.combined.each_mut().map(|c| scratch_of(c, cols));
        for x in 0..cols {
            let b = bt_times([r[0][x], r[1][x], r[2][x], r[3][x], r[4][x], r[5][x]]);
            (c0[x], c1[x], c2[x], c3[x], c4[x], c5[x]) = (b[0], b[1], b[2], b[3], b[4], b[5]);
        }
    }
    let phases = scratch_of(&mut scratch.phases, 4 * s1);
    for (i, row) in scratch.combined.iter().enumerate() {
        // Column 4k + p of the row -> phase p, element k.
        let (p0, rest) = phases.split_at_mut(s1);
        let (p1, rest) = rest.split_at_mut(s1);
        let (p2, p3) = rest.split_at_mut(s1);
        for (k, q) in row[..cols].chunks_exact(4).enumerate() {
            (p0[k], p1[k], p2[k], p3[k]) = (q[0], q[1], q[2], q[3]);
        }
        // Tile k reads columns 4k..4k + 6: p0[k], p1[k], p2[k], p3[k], p0[k + 1], p1[k + 1].
        let x: [&[f32]; 6] = [
            &p0[..seg],
            &p1[..seg],
            &p2[..seg],
            &p3[..seg],
            &p0[1..=seg],
            &p1[1..=seg],
        ];
        let [o0, o1, o2, o3, o4, o5] = &mut out[6 * i..6 * i + 6] else {
            unreachable!("36 output planes")
        };
        let (o0, o1, o2) = (
            &mut o0[at..at + seg],
            &mut o1[at..at + seg],
            &mut o2[at..at + seg],
        );
        let (o3, o4, o5) = (
            &mut o3[at..at + seg],
            &mut o4[at..at + seg],
            &mut o5[at..at + seg],
        );
        for k in 0..seg {
            let b = bt_times([x[0][k], x[1][k], x[2][k], x[3][k], x[4][k], x[5][k]]);
            o0[k].write(b[0]);
            o1[k].write(b[1]);
            o2[k].write(b[2]);
            o3[k].write(b[3]);
            o4[k].write(b[4]);
            o5[k].write(b[5]);
        }
    }
}

/// `B^T d B` of tiles `t0..t0 + len` of one image `img: [Cin, H, W]`: `[36, Cin, len]`.
fn transform_input(geo: &Geometry, img: &[f32], (t0, len): (usize, usize)) -> Vec<f32> {
    let (cin, h, wd, pad, tw) = (geo.c, geo.h, geo.w, geo.pad as isize, geo.wo.div_ceil(4));
    let mut v = Unfilled::new(36 * cin * len);
    let mut planes: Vec<&mut [MaybeUninit<f32>]> = v.slots().chunks_mut(cin * len).collect();
    let mut rows = [const { Vec::new() }; 6];
    let mut scratch = InputScratch::default();
    for ic in 0..cin {
        let plane = &img[ic * h * wd..][..h * wd];
        for (t, ty, tx0, seg) in row_runs(t0, len, tw) {
            // The 6 input rows under this run of tiles: tile tx0 + k reads row[4k .. 4k + 6].
            let at = ((4 * ty) as isize - pad, (4 * tx0) as isize - pad);
            gather_rows(plane, (h, wd), at, 4 * seg + 4, &mut rows);
            input_transform_run(&rows, seg, &mut scratch, &mut planes, ic * len + t);
        }
    }
    // SAFETY: the runs cover tiles 0..len of every channel, each writing all 36 planes.
    unsafe { v.assume_filled() }
}

/// `A^T m A` of `seg` consecutive tiles (chunk offsets `t..t + seg`) of one output channel,
/// `m(e)` being element `e` of every tile of the chunk: writes the 4 output rows of the run,
/// `4 * seg` pixels each, into the first `4 * seg` floats of each of `out`. Two vectorised
/// passes over the tiles: `A^T` down each of the 6 columns into `cols` (`[6 columns][4 rows][seg]`), then `A` along each row, whose
/// 4 pixels per tile are stored interleaved.
#[inline(always)]
fn output_transform_run<'a>(
    m: impl Fn(usize) -> &'a [f32],
    t: usize,
    seg: usize,
    cols: &mut Vec<f32>,
    out: &mut [Vec<f32>; 4],
) {
    let cols = scratch_of(cols, 24 * seg);
    for (j, col) in cols.chunks_exact_mut(4 * seg).enumerate() {
        let y: [&[f32]; 6] = std::array::from_fn(|i| &m(6 * i + j)[t..t + seg]);
        let (r0, rest) = col.split_at_mut(seg);
        let (r1, rest) = rest.split_at_mut(seg);
        let (r2, r3) = rest.split_at_mut(seg);
        for k in 0..seg {
            let v = at_times([y[0][k], y[1][k], y[2][k], y[3][k], y[4][k], y[5][k]]);
            (r0[k], r1[k], r2[k], r3[k]) = (v[0], v[1], v[2], v[3]);
        }
    }
    for (r, row) in out.iter_mut().enumerate() {
        let row = scratch_of(row, 4 * seg);
        let y: [&[f32]; 6] = std::array::from_fn(|j| &cols[(4 * j + r) * seg..][..seg]);
        for (k, px) in row.chunks_exact_mut(4).enumerate() {
            let v = at_times([y[0][k], y[1][k], y[2][k], y[3][k], y[4][k], y[5][k]]);
            px.copy_from_slice(&v);
        }
    }
}

/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin, 3, 3]` (both contiguous) -> `[N, Cout, Ho, Wo]`
/// `filters`: where to find or keep the transformed filters (inference), else they are
/// computed for this call.
pub(super) fn conv_winograd(
    geo: &Geometry,
    x: &[f32],
    w: &[f32],
    ep: &Epilogue,
    filters: Option<CachedFilters>,
) -> Vec<f32> {
    let (cin, cout, h, wd) = (geo.c, geo.cout, geo.h, geo.w);
    let (ho, wo) = (geo.ho, geo.wo);
    let tw = wo.div_ceil(4);
    let u = match filters {
        Some(f) => f
            .cache
            .get_or_insert(f.weight, || transform_filters(geo, w)),
        None => Arc::new(transform_filters(geo, w)),
    };
    let mut out = Unfilled::new(geo.n * cout * ho * wo);
    let dst = out.ptr();
    tasks(geo).par_iter().for_each(|task| {
        let Task {
            n,
            t0,
            len,
            oc0,
            ocn,
        } = *task;
        let img = &x[n * cin * h * wd..][..cin * h * wd];
        let v = transform_input(geo, img, (t0, len)); // [36, Cin, len]
        let mut m = Unfilled::new(36 * ocn * len); // [36, ocn, len]
        let m_ptr = m.ptr();
        for e in 0..36 {
            unsafe {
                let (m_e, u_e, v_e) = (
                    m_ptr.get().add(e * ocn * len),
                    u.as_ptr().add((e * cout + oc0) * cin),
                    v.as_ptr().add(e * cin * len),
                );
                matmul(
                    (ocn, len, cin),
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
        // SAFETY: the 36 gemms write all of `m` without reading it.
        let m = unsafe { m.assume_filled() };
        let (mut cols, mut out_rows) = (Vec::new(), [const { Vec::new() }; 4]);
        for j in 0..ocn {
            let oc = oc0 + j;
            let m_oc = |e: usize| &m[(e * ocn + j) * len..][..len];
            for (t, ty, tx0, seg) in row_runs(t0, len, tw) {
                output_transform_run(m_oc, t, seg, &mut cols, &mut out_rows);
                let ox0 = 4 * tx0;
                let valid = (4 * seg).min(wo - ox0);
                for (i, row) in out_rows.iter_mut().enumerate() {
                    let oy = 4 * ty + i;
                    if oy >= ho {
                        break;
                    }
                    let at = ((n * cout + oc) * ho + oy) * wo + ox0;
                    ep.apply_row(&mut row[..valid], oc, at);
                    // Tasks cover disjoint (tile, channel) pairs, so disjoint output pixels.
                    unsafe {
                        std::ptr::copy_nonoverlapping(row.as_ptr(), dst.get().add(at), valid);
                    }
                }
            }
        }
    });
    // SAFETY: the tasks cover every tile of every image and every output channel, and each
    // writes its tiles' output pixels of its channels.
    unsafe { out.assume_filled() }
}
