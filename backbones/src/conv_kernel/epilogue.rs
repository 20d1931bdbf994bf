//! What a convolution kernel does to each output row while it is still in cache (inference):
//! `y = relu?(conv + bias[co] + residual[n, co, p])`. One pass inside the kernel instead of up
//! to three single-threaded candle passes over the whole output (bias add, residual add, ReLU).

/// Bias, residual and ReLU applied to the conv's output, in that order (torchvision's
/// `relu(bn3(conv3(..)) + identity)` with the BN folded into the conv as a bias).
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// `[Cout]`, added to every pixel of channel `co`.
    pub bias: Option<&'a [f32]>,
    /// `[N, Cout, Ho, Wo]` (contiguous), added elementwise.
    pub residual: Option<&'a [f32]>,
    /// `max(y, 0)` last.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Leaves the output as the convolution wrote it.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        residual: None,
        relu: false,
    };

    pub fn is_none(&self) -> bool {
        self.bias.is_none() && self.residual.is_none() && !self.relu
    }

    /// Applies the epilogue to `row`, the output of channel `co` at flat positions
    /// `offset..offset + row.len()` of the whole output (`offset = (n * Cout + co) * HoWo + p0`,
    /// the same index into `residual`).
    #[inline]
    pub fn apply_row(&self, row: &mut [f32], co: usize, offset: usize) {
        let b = self.bias.map_or(0.0, |b| b[co]);
        match (self.residual, self.relu) {
            (Some(r), true) => {
                let r = &r[offset..offset + row.len()];
                row.iter_mut()
                    .zip(r)
                    .for_each(|(y, r)| *y = (*y + b + r).max(0.0));
            }
            (Some(r), false) => {
                let r = &r[offset..offset + row.len()];
                row.iter_mut().zip(r).for_each(|(y, r)| *y += b + r);
            }
            (None, true) => row.iter_mut().for_each(|y| *y = (*y + b).max(0.0)),
            (None, false) if b != 0.0 => row.iter_mut().for_each(|y| *y += b),
            (None, false) => {}
        }
    }

    /// Applies the epilogue to rows `co0..co0 + rows` of image `n`, positions `p0..p0 + len`
    /// (a tile a kernel has just written) of the `[N, Cout, hw]` output starting at `out`.
    ///
    /// # Safety
    /// `out` is the start of the whole `[N, Cout, hw]` output; the caller owns that tile
    /// exclusively.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn apply_tile(
        &self,
        out: *mut f32,
        (cout, hw): (usize, usize),
        n: usize,
        (co0, rows): (usize, usize),
        (p0, len): (usize, usize),
    ) {
        if self.is_none() {
            return;
        }
        for co in co0..co0 + rows {
            let offset = (n * cout + co) * hw + p0;
            // SAFETY: in bounds of the output, and the caller owns this tile.
            let row = unsafe { std::slice::from_raw_parts_mut(out.add(offset), len) };
            self.apply_row(row, co, offset);
        }
    }
}
