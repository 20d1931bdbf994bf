//! 1x1 convolutions (most of a ResNeXt's multiply-adds) as gemms straight into the output:
//! `y[n] = W x[n]` with `W: [Cout, Cin]`, `x[n]: [Cin, HoWo]`, one task per (image, block of
//! output channels, tile of pixels), the epilogue applied to each tile right after its gemm.
//! A stride-s 1x1 first gathers every s-th row and column into a contiguous buffer.
use gemm::Parallelism;
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{matmul, Geometry, Unfilled};

/// Pixels per tile. Each tile's gemm packs the weight rows again, so wider tiles pack less
/// often; narrower ones keep the tile's input panel (`Cin x TILE`) and output in L2. Measured
/// on the X101-FPN detector forward at 800x1333 (time_step, alternated builds): 256 was 4-5%
/// faster than 128, and 384 and 512 were between the two.
const TILE: usize = 256;

/// Whether `geo` is a plain 1x1 conv (no padding, no groups).
pub(super) fn is_pointwise(geo: &Geometry) -> bool {
    geo.k == 1 && geo.pad == 0 && geo.groups == 1
}

/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin, 1, 1]` (both contiguous) -> `[N, Cout, Ho, Wo]`
pub(super) fn conv_pointwise(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    let (cin, cout, hw) = (geo.c, geo.cout, geo.hw_out());
    let gathered;
    let x = if geo.stride == 1 {
        x
    } else {
        gathered = subsample(geo, x);
        &gathered[..]
    };
    let mut out = Unfilled::new(geo.n * cout * hw);
    let dst = out.ptr();
    let tiles = hw.div_ceil(TILE);
    // Split the output channels too when there are few pixel tiles (C5 at 800 px has ~8).
    let threads = rayon::current_num_threads();
    let co_blocks = (4 * threads)
        .div_ceil(geo.n * tiles)
        .clamp(1, cout.div_ceil(64));
    let co_block = cout.div_ceil(co_blocks);
    let tasks: Vec<(usize, usize, usize)> = (0..geo.n)
        .flat_map(|n| (0..co_blocks).flat_map(move |b| (0..tiles).map(move |t| (n, b, t))))
        .collect();
    tasks.par_iter().for_each(|&(n, b, t)| {
        let (p0, len) = (t * TILE, TILE.min(hw - t * TILE));
        let (co0, rows) = (b * co_block, co_block.min(cout - b * co_block));
        // Task (n, b, t) alone writes rows co0..co0+rows, columns p0..p0+len of image n.
        unsafe {
            matmul(
                (rows, len, cin),
                dst.get().add((n * cout + co0) * hw + p0),
                hw,
                false,
                w.as_ptr().add(co0 * cin),
                (cin, 1),
                x.as_ptr().add(n * cin * hw + p0),
                (hw, 1),
                Parallelism::None,
            );
            ep.apply_tile(dst.get(), (cout, hw), n, (co0, rows), (p0, len));
        }
    });
    // SAFETY: the tasks cover every (image, channel block, pixel tile), and the gemm writes
    // its whole tile without reading it.
    unsafe { out.assume_filled() }
}

/// `x[:, :, ::s, ::s]` as a contiguous `[N, Cin, Ho, Wo]` buffer.
fn subsample(geo: &Geometry, x: &[f32]) -> Vec<f32> {
    let (h, w, s, ho, wo) = (geo.h, geo.w, geo.stride, geo.ho, geo.wo);
    let mut out = vec![0f32; geo.n * geo.c * ho * wo];
    out.par_chunks_mut(ho * wo)
        .enumerate()
        .for_each(|(i, plane)| {
            let src = &x[i * h * w..][..h * w];
            for (oy, row) in plane.chunks_mut(wo).enumerate() {
                let src_row = &src[oy * s * w..][..w];
                for (ox, v) in row.iter_mut().enumerate() {
                    *v = src_row[ox * s];
                }
            }
        });
    out
}
