//! im2col / col2im over tiles of output pixels, and the gemm call, for `conv_kernel`.
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result};
use gemm::Parallelism;
use std::mem::MaybeUninit;

/// Sizes of one convolution (square kernel, dilation 1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub groups: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    /// The geometry of `conv2d(x, weight, stride, padding, groups)`, or an error naming the
    /// shapes when they do not fit together.
    pub fn new(
        (n, c, h, w): (usize, usize, usize, usize),
        (cout, cg, k, k2): (usize, usize, usize, usize),
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> Result<Self> {
        if k != k2
            || groups == 0
            || !c.is_multiple_of(groups)
            || !cout.is_multiple_of(groups)
            || cg != c / groups
            || stride == 0
        {
            candle_core::bail!(
                "conv2d: input {:?}, weight {:?}, groups {groups}, stride {stride}: incompatible",
                (n, c, h, w),
                (cout, cg, k, k2)
            )
        }
        if h + 2 * padding < k || w + 2 * padding < k {
            candle_core::bail!(
                "conv2d: input {h}x{w} with padding {padding} is smaller than the {k}x{k} kernel"
            )
        }
        Ok(Self {
            n,
            c,
            h,
            w,
            cout,
            groups,
            k,
            stride,
            pad: padding,
            ho: (h + 2 * padding - k) / stride + 1,
            wo: (w + 2 * padding - k) / stride + 1,
        })
    }

    pub fn cg(&self) -> usize {
        self.c / self.groups
    }
    pub fn mg(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of the im2col matrix of one group: `Cin/groups * k * k`.
    pub fn kk(&self) -> usize {
        self.cg() * self.k * self.k
    }
    pub fn hw_out(&self) -> usize {
        self.ho * self.wo
    }
    /// Output pixels per tile: the im2col tile (`kk x tile` floats) stays around 512 KiB.
    pub fn tile(&self) -> usize {
        (131_072 / self.kk()).clamp(256, 4096).min(self.hw_out())
    }
    pub fn tiles(&self) -> Vec<(usize, usize)> {
        let t = self.tile();
        (0..self.hw_out())
            .step_by(t)
            .map(|p0| (p0, t.min(self.hw_out() - p0)))
            .collect()
    }
}

/// Read-only access to a contiguous f32 storage.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        other => candle_core::bail!("conv2d: {what} must be f32, got {:?}", other.dtype()),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv2d: {what} must be contiguous"),
    }
}

/// A raw pointer shared by tasks writing disjoint regions.
#[derive(Clone, Copy)]
pub(super) struct SyncPtr(pub *mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    pub fn get(&self) -> *mut f32 {
        self.0
    }
}

/// A kernel's output of `len` floats, allocated without the zeroing pass of `vec![0f32; len]`:
/// the kernel's tasks write every float before anything reads it. With the heap reused
/// between calls (the `detect` binary's allocator settings) a zeroed output costs a memset of
/// memory that the kernel then overwrites (5% of the X101 forward).
pub(super) struct Unfilled {
    buf: Vec<f32>,
    len: usize,
}

impl Unfilled {
    pub fn new(len: usize) -> Self {
        let mut buf = Vec::with_capacity(len);
        if cfg!(debug_assertions) {
            // Test builds: a float the kernel fails to write reads back as NaN.
            buf.resize(len, f32::NAN);
            buf.clear();
        }
        Self { buf, len }
    }

    /// The start of the output, for tasks writing disjoint regions through raw pointers.
    pub fn ptr(&mut self) -> SyncPtr {
        SyncPtr(self.buf.spare_capacity_mut().as_mut_ptr().cast())
    }

    /// The output's `len` slots, for tasks writing through slices.
    pub fn slots(&mut self) -> &mut [MaybeUninit<f32>] {
        &mut self.buf.spare_capacity_mut()[..self.len]
    }

    /// The output, once written.
    ///
    /// # Safety
    /// Every one of the `len` floats has been written.
    pub unsafe fn assume_filled(mut self) -> Vec<f32> {
        // SAFETY: capacity >= len, and the caller has initialised the first `len` floats.
        unsafe { self.buf.set_len(self.len) };
        self.buf
    }
}

/// The valid `ox` range for kernel column `kx`: `0 <= ox * s + kx - pad < w`.
pub(super) fn valid_range(geo: &Geometry, kx: usize, w: usize, wo: usize) -> (usize, usize) {
    let (s, pad) = (geo.stride, geo.pad);
    let lo = if pad > kx { (pad - kx).div_ceil(s) } else { 0 };
    let hi = if w + pad > kx {
        (w - 1 + pad - kx) / s + 1
    } else {
        0
    };
    (lo.min(wo), hi.min(wo).max(lo.min(wo)))
}

/// Calls `f(row_index, t0, ox0, ox1, iy_or_none)` for every output-row segment of a tile:
/// positions `t0..t0 + (ox1 - ox0)` of the tile are output row `oy`, columns `ox0..ox1`.
fn for_segments(
    geo: &Geometry,
    p0: usize,
    len: usize,
    mut f: impl FnMut(usize, usize, usize, usize),
) {
    let mut p = p0;
    while p < p0 + len {
        let (oy, ox0) = (p / geo.wo, p % geo.wo);
        let ox1 = geo.wo.min(ox0 + p0 + len - p);
        f(oy, p - p0, ox0, ox1);
        p += ox1 - ox0;
    }
}

/// `cols[r, t]` (`r = (c, ky, kx)`, `t` = tile position) from `slab`, one group's input
/// channels of one image (`[Cin / groups, H, W]`).
pub(super) fn im2col(geo: &Geometry, slab: &[f32], p0: usize, len: usize, cols: &mut [f32]) {
    let (h, w, k, s, pad) = (geo.h, geo.w, geo.k, geo.stride, geo.pad);
    for c in 0..geo.cg() {
        let plane = &slab[c * h * w..][..h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((c * k + ky) * k + kx) * len..][..len];
                let (lo, hi) = valid_range(geo, kx, w, geo.wo);
                for_segments(geo, p0, len, |oy, t0, ox0, ox1| {
                    let out = &mut row[t0..t0 + ox1 - ox0];
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        out.fill(0.0);
                        return;
                    }
                    let src = &plane[iy as usize * w..][..w];
                    for (o, ox) in out.iter_mut().zip(ox0..ox1) {
                        *o = if ox >= lo && ox < hi {
                            src[ox * s + kx - pad]
                        } else {
                            0.0
                        };
                    }
                });
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds `cols[r, t]` into the input positions they were read from.
pub(super) fn col2im(geo: &Geometry, cols: &[f32], p0: usize, len: usize, slab: &mut [f32]) {
    let (h, w, k, s, pad) = (geo.h, geo.w, geo.k, geo.stride, geo.pad);
    for c in 0..geo.cg() {
        let plane = &mut slab[c * h * w..][..h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((c * k + ky) * k + kx) * len..][..len];
                let (lo, hi) = valid_range(geo, kx, w, geo.wo);
                for_segments(geo, p0, len, |oy, t0, ox0, ox1| {
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        return;
                    }
                    let dst = &mut plane[iy as usize * w..][..w];
                    for (v, ox) in row[t0..t0 + ox1 - ox0].iter().zip(ox0..ox1) {
                        if ox >= lo && ox < hi {
                            dst[ox * s + kx - pad] += v;
                        }
                    }
                });
            }
        }
    }
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]`, strides as (row, column).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
    par: Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        par,
    )
}
