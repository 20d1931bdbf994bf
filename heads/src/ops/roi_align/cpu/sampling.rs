//! Where one RoI's bilinear samples fall on its feature map, one axis at a time.
//!
//! Sample `(iy, ix)` of bin `(by, bx)` sits at
//! `y = start_h + by * bin_h + (iy + 0.5) * bin_h / grid_h` (and `x` likewise): `y` depends only
//! on `(by, iy)` and `x` only on `(bx, ix)`, and torchvision's bilinear rule (zero when more
//! than one pixel outside, clamped to the border pixel) treats the two axes independently. So
//! the `pooled_h * grid_h * pooled_w * grid_w` samples of a RoI are described by
//! `pooled_h * grid_h` row taps and `pooled_w * grid_w` column taps. A sample's four weights
//! are the products `hy * hx, hy * lx, ly * hx, ly * lx` of its taps' weights, as in
//! torchvision's pre-calculation; the kernels apply them one axis at a time (rows, then
//! columns; [`Columns`]), so they equal torchvision's sums within f32 rounding.

use candle_core::Result;

use super::super::{Dims, Params};

/// Above this many samples per bin a RoI is refused rather than allocated (only absurd
/// coordinates get there: a 1e6-pixel-wide RoI on a 7x7 output with an adaptive grid).
const MAX_SAMPLES_PER_BIN: i64 = 1 << 20;

/// One sample coordinate on one axis: the two pixels around it and their weights (`h` for
/// `lo`, `l` for `hi`). `None` (in [`Sampling`]) when the coordinate is out of range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tap {
    pub lo: usize,
    pub hi: usize,
    /// Weight of `hi`: the distance past `lo` (torchvision's `ly` / `lx`).
    pub l: f32,
    /// Weight of `lo`: `1 - l` (torchvision's `hy` / `hx`).
    pub h: f32,
}

/// The samples of one RoI on its level: image, grid, and the taps of each axis, bin after bin.
#[derive(Debug)]
pub(crate) struct Sampling {
    pub batch: usize,
    pub grid_h: usize,
    pub grid_w: usize,
    /// Samples per bin as the divisor of the average (at least 1, as in torchvision).
    pub count: f32,
    /// `pooled_h * grid_h` row taps.
    pub ys: Vec<Option<Tap>>,
    /// The `pooled_w * grid_w` column taps and the columns they read.
    pub cols: Columns,
}

/// The feature-map columns one RoI's column taps read, and each tap as indices into them.
///
/// The separable kernels interpolate each row tap over these columns first (one short
/// vectorisable pass per row, shared by every column tap), then each column tap from that
/// buffer. When the columns are dense enough they are one contiguous run from `start`, read as
/// a slice; else the list of distinct columns (a huge RoI with few samples per bin).
#[derive(Debug, PartialEq)]
pub(crate) struct Columns {
    /// `Some(c0)`: the columns are `c0, c0 + 1, ..., c0 + len - 1`.
    pub start: Option<usize>,
    /// How many columns the buffer holds.
    pub len: usize,
    /// Absolute columns when not contiguous (empty when contiguous).
    pub list: Vec<usize>,
    /// Per column tap: `Tap { lo, hi, .. }` with `lo` and `hi` as indices into the columns.
    pub taps: Vec<Option<Tap>>,
}

impl Columns {
    fn new(xs: &[Option<Tap>]) -> Columns {
        let mut list: Vec<usize> = xs.iter().flatten().flat_map(|t| [t.lo, t.hi]).collect();
        list.sort_unstable();
        list.dedup();
        let (Some(&first), Some(&last)) = (list.first(), list.last()) else {
            return Columns {
                start: None,
                len: 0,
                list,
                taps: xs.to_vec(),
            };
        };
        let span = last - first + 1;
        // A contiguous run costs `span` cheap vector lanes; a list costs a gather per column.
        if span <= 2 * list.len() + 16 {
            let shift = |t: &Tap| Tap {
                lo: t.lo - first,
                hi: t.hi - first,
                ..*t
            };
            return Columns {
                start: Some(first),
                len: span,
                list: Vec::new(),
                taps: xs.iter().map(|t| t.as_ref().map(shift)).collect(),
            };
        }
        let index = |c: usize| list.partition_point(|&x| x < c);
        let taps = xs
            .iter()
            .map(|t| {
                t.map(|t| Tap {
                    lo: index(t.lo),
                    hi: index(t.hi),
                    ..t
                })
            })
            .collect();
        Columns {
            start: None,
            len: list.len(),
            list,
            taps,
        }
    }
}

/// torchvision's bilinear rule along one axis of `size` pixels for coordinate `v`.
pub(crate) fn tap(v: f32, size: usize) -> Option<Tap> {
    // Written as !(in range) so that NaN lands here too; an empty axis has nothing to sample.
    if size == 0 || !(v >= -1.0 && v <= size as f32) {
        return None;
    }
    let mut v = if v <= 0.0 { 0.0 } else { v };
    let last = size - 1;
    let mut lo = v as usize;
    let hi;
    if lo >= last {
        lo = last;
        hi = last;
        v = lo as f32;
    } else {
        hi = lo + 1;
    }
    let l = v - lo as f32;
    Some(Tap {
        lo,
        hi,
        l,
        h: 1.0 - l,
    })
}

/// The sampling of RoI `roi = (batch, x1, y1, x2, y2)`, row `index` of the caller's RoIs, on a
/// level of dims `d` whose coordinates are the RoI's times `p.spatial_scale`.
pub(crate) fn sampling(index: usize, roi: [f32; 5], d: Dims, p: Params) -> Result<Sampling> {
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
    let axis = |start: f32, bin: f32, pooled: usize, grid: usize, size: usize| {
        let mut taps = Vec::with_capacity(pooled * grid);
        for k in 0..pooled {
            for i in 0..grid {
                let v = start + k as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
                taps.push(tap(v, size));
            }
        }
        taps
    };
    let xs = axis(start_w, bin_w, p.pooled_w, grid_w, d.w);
    Ok(Sampling {
        batch: b as usize,
        grid_h,
        grid_w,
        count: (grid_h * grid_w).max(1) as f32,
        ys: axis(start_h, bin_h, p.pooled_h, grid_h, d.h),
        cols: Columns::new(&xs),
    })
}
