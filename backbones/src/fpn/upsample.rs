//! Exact 2x nearest-neighbour upsampling of CPU f32 maps (every FPN top-down step when the
//! batch is padded to a multiple of 32) as one node with its own backward: the sum of each
//! 2x2 block of the output gradient. As two `index_select`s (the general path), the backward
//! was two candle `index_add`s, one of them a scalar loop over every pixel of the P2 map, plus
//! a zeroed buffer per step.
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::conv_kernel::contiguous_f32;

/// `out[n, c, 2y + a, 2x + b] = x[n, c, y, x]` for `a, b` in {0, 1}.
///
/// # Shapes
/// `x: [N, C, H, W]` (CPU, f32) -> `[N, C, 2H, 2W]`
pub(crate) fn upsample2x(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Upsample2x)
}

struct Upsample2x;

impl CustomOp1 for Upsample2x {
    fn name(&self) -> &'static str {
        "upsample-nearest-2x"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "upsample input")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let len = n * c * 4 * h * w;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(4 * h * w)
            .zip(x.par_chunks(h * w))
            .for_each(|(plane, src)| {
                for (rows, src) in plane.chunks_mut(4 * w).zip(src.chunks(w)) {
                    let (top, bottom) = rows.split_at_mut(2 * w);
                    for (pair, &v) in top.chunks_mut(2).zip(src) {
                        pair[0].write(v);
                        pair[1].write(v);
                    }
                    bottom.copy_from_slice(top);
                }
            });
        // SAFETY: each of the N*C planes wrote its 2H rows of 2W floats.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, c, 2 * h, 2 * w))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&BlockSum2x2)?))
    }
}

/// `out[n, c, y, x] = (g[2y, 2x] + g[2y, 2x + 1]) + (g[2y + 1, 2x] + g[2y + 1, 2x + 1])`, the
/// order of the two `index_add`s it replaces (columns first), so the same floats.
struct BlockSum2x2;

impl CustomOp1 for BlockSum2x2 {
    fn name(&self) -> &'static str {
        "block-sum-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = contiguous_f32(s, l, "upsample gradient")?;
        let (n, c, h2, w2) = l.shape().dims4()?;
        let (h, w) = (h2 / 2, w2 / 2);
        let len = n * c * h * w;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(h * w)
            .zip(g.par_chunks(h2 * w2))
            .for_each(|(plane, src)| {
                for (row, rows) in plane.chunks_mut(w).zip(src.chunks(2 * w2)) {
                    let (top, bottom) = rows.split_at(w2);
                    let sums = top.chunks(2).zip(bottom.chunks(2));
                    for (o, (t, b)) in row.iter_mut().zip(sums) {
                        o.write((t[0] + t[1]) + (b[0] + b[1]));
                    }
                }
            });
        // SAFETY: each of the N*C planes wrote its H rows of W floats.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}
