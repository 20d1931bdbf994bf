//! The forward convolution on f32 slices: picks the kernel for the shape, and applies the
//! epilogue inside it (an empty one leaves the output as it is).
use gemm::Parallelism;
use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::im2col::{im2col, matmul, Geometry, Unfilled};
use super::winograd4::CachedFilters;
use super::{direct, pointwise, shift_gemm, winograd, winograd4};

/// # Shapes
/// `x: [N, Cin, H, W]`, `w: [Cout, Cin/G, k, k]` (both contiguous) -> `[N, Cout, Ho, Wo]`
pub(super) fn forward(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    forward_cached(geo, x, w, ep, None)
}

/// [`forward`], with a place to keep what the kernel derives from the weights alone
/// (Winograd's transformed filters) between inference calls.
pub(super) fn forward_cached(
    geo: &Geometry,
    x: &[f32],
    w: &[f32],
    ep: &Epilogue,
    filters: Option<CachedFilters>,
) -> Vec<f32> {
    if pointwise::is_pointwise(geo) {
        return pointwise::conv_pointwise(geo, x, w, ep);
    }
    if direct::prefer_direct(geo) {
        return direct::conv_direct(geo, x, w, ep);
    }
    if winograd::prefer_winograd(geo) {
        return winograd4::conv_winograd(geo, x, w, ep, filters);
    }
    if shift_gemm::prefer_shift_gemm(geo) {
        return shift_gemm::conv_shift_gemm(geo, x, w, ep);
    }
    conv_im2col(geo, x, w, ep)
}

/// `y[n, g] = W_g x im2col(x[n, g])`, one task per (image, group, tile of output pixels); the
/// epilogue runs on each tile after its gemm.
fn conv_im2col(geo: &Geometry, x: &[f32], w: &[f32], ep: &Epilogue) -> Vec<f32> {
    let (hw, kk, mg, slab) = (geo.hw_out(), geo.kk(), geo.mg(), geo.cg() * geo.h * geo.w);
    let mut out = Unfilled::new(geo.n * geo.cout * hw); // [N, Cout, Ho*Wo]
    let dst = out.ptr();
    let tiles = geo.tiles();
    let tasks: Vec<(usize, usize, usize)> = (0..geo.n * geo.groups)
        .flat_map(|ng| (0..tiles.len()).map(move |t| (ng / geo.groups, ng % geo.groups, t)))
        .collect();
    tasks
        .par_iter()
        .for_each_init(Vec::new, |cols: &mut Vec<f32>, &(n, g, t)| {
            let (p0, len) = tiles[t];
            cols.resize(kk * len, 0.0);
            let input = &x[(n * geo.groups + g) * slab..][..slab]; // [Cin/G, H, W]
            im2col(geo, input, p0, len, cols);
            // Each task writes rows g*mg..(g+1)*mg, columns p0..p0+len of image n: disjoint.
            unsafe {
                let out_tile = dst.get().add((n * geo.cout + g * mg) * hw + p0);
                let w_g = w.as_ptr().add(g * mg * kk);
                matmul(
                    (mg, len, kk),
                    out_tile,
                    hw,
                    false,
                    w_g,
                    (kk, 1),
                    cols.as_ptr(),
                    (len, 1),
                    Parallelism::None,
                );
                ep.apply_tile(dst.get(), (geo.cout, hw), n, (g * mg, mg), (p0, len));
            }
        });
    // SAFETY: the tasks cover every (image, group, pixel tile), and the gemm writes its whole
    // tile without reading it.
    unsafe { out.assume_filled() }
}
