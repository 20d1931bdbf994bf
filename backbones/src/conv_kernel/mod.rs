//! Our CPU convolution: per (image, group, tile of output pixels) one im2col into a small
//! buffer and one gemm writing straight into the output, all tiles in parallel; with a
//! backward of the same shape (dW: gemm against the im2col tile; dX: gemm then col2im).
//! Stride-1 convs with few input channels per group (ResNeXt's 3x3s) take a direct kernel
//! instead (`direct`); dense stride-1 3x3s with >= 64 channels (ResNet's 3x3s, the FPN, the
//! RPN) Winograd F(4x4, 3x3) (`winograd4`; at inference its transformed filters are kept per
//! conv, [`FilterCache`]); other stride-1 convs with >= 64 channels per group k*k shifted gemms
//! (`shift_gemm`). The backward: dX of a stride-1 conv wider than 1x1 is the forward of the
//! transposed conv (so the direct kernel or Winograd again), else a gemm then col2im (a
//! stride-1 1x1 reads its input as the im2col matrix: one gemm per image, no col2im); dW of a
//! grouped 3x3 is a direct kernel (`direct_dw`), of a dense stride-1 3x3 Winograd F(2x2, 3x3)
//! (`winograd`), else a gemm against the im2col tile. Three entries: [`conv2d`] (the plain
//! differentiable conv), [`conv2d_fused`] (inference, bias + residual + ReLU in the kernel)
//! and [`conv2d_trainable`] (the same fused, as one autograd node for training: `train`).
//!
//! Why: candle 0.11 runs a grouped conv as one conv per group, serially, then a `cat`
//! (~6 GFLOP/s for ResNeXt's 3x3 layers on 2 cores, CANDLE_NOTES), and its conv backward fails
//! for stride 2 when H and W have different parities. This op has neither problem, and skips
//! dX when the input needs no gradient (frozen layers). f32 only.
mod direct;
mod direct_dw;
mod epilogue;
mod forward;
mod fused;
mod im2col;
mod pointwise;
mod shift_gemm;
mod train;
mod winograd;
mod winograd4;

pub use fused::{conv2d_fused, prepare_filters};
pub(crate) use im2col::slice as contiguous_f32;
pub use train::conv2d_trainable;
pub use winograd4::FilterCache;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use epilogue::Epilogue;
use forward::forward;
use gemm::Parallelism;
use im2col::{col2im, im2col, matmul, slice, Geometry, SyncPtr};
use rayon::prelude::*;

/// `conv2d(x, weight, stride, padding, groups)` on CPU f32 tensors.
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin / groups, k, k]` -> `[N, Cout, Ho, Wo]`
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Result<Tensor> {
    // The trainable op without scale, bias, residual or ReLU: one forward, one backward.
    conv2d_trainable(
        x,
        weight,
        None,
        None,
        None,
        false,
        (stride, padding, groups),
    )
}

/// A stride-1 1x1 conv without padding: its im2col matrix is its input.
fn is_plain_1x1(geo: &Geometry) -> bool {
    geo.k == 1 && geo.stride == 1 && geo.pad == 0
}

/// Run `f(g, parallelism)` for every group: groups in parallel when there are enough of
/// them, else one after the other with a parallel gemm.
fn for_groups(groups: usize, f: impl Fn(usize, Parallelism) + Sync) {
    if groups >= rayon::current_num_threads() {
        (0..groups)
            .into_par_iter()
            .for_each(|g| f(g, Parallelism::None));
    } else {
        (0..groups).for_each(|g| f(g, Parallelism::Rayon(0)));
    }
}

/// dW: inputs (x, grad), output `[Cout, Cin/G, k, k]`, by the direct kernel, Winograd or
/// [`weight_grad_im2col`], times `scale[co]` on each output channel's row when there is one.
struct BackwardWeight {
    geo: Geometry,
    /// `[Cout]`: the forward used `w[co] * scale[co]` (a frozen BN folded into the weights).
    scale: Option<Vec<f32>>,
}

/// Multiplies each output channel's row of `w: [Cout, ...]` by `scale[co]`.
fn scale_rows(w: &mut [f32], scale: &[f32]) {
    let per_co = w.len() / scale.len();
    for (row, s) in w.chunks_exact_mut(per_co).zip(scale) {
        row.iter_mut().for_each(|v| *v *= s);
    }
}

/// `w` with each output channel's row multiplied by `scale[co]` (a frozen BN's scale folded
/// into the weights), or `w` itself without a scale.
fn scaled_rows<'a>(w: &'a [f32], scale: Option<&[f32]>) -> std::borrow::Cow<'a, [f32]> {
    match scale {
        Some(scale) => {
            let mut w = w.to_vec();
            scale_rows(&mut w, scale);
            w.into()
        }
        None => w.into(),
    }
}

/// `dW_g = sum_n grad[n, g] x im2col(x[n, g])^T`: inputs `x: [N, Cin, H, W]`, `grad:
/// [N, Cout, Ho, Wo]` -> `[Cout, Cin/G, k, k]`.
fn weight_grad_im2col(geo: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let geo = *geo;
    let (hw, kk, mg, slab) = (geo.hw_out(), geo.kk(), geo.mg(), geo.cg() * geo.h * geo.w);
    let mut dw = vec![0f32; geo.cout * kk]; // [Cout, Cin/G * k * k]
    let dst = SyncPtr(dw.as_mut_ptr());
    let tiles = geo.tiles();
    for_groups(geo.groups, |g, par| {
        if is_plain_1x1(&geo) {
            // im2col of a stride-1 1x1 is the input itself: one gemm per image over all
            // pixels, reading x[n, g] as the transposed right operand.
            for n in 0..geo.n {
                unsafe {
                    matmul(
                        (mg, kk, hw),
                        dst.get().add(g * mg * kk),
                        kk,
                        n > 0,
                        grad.as_ptr().add((n * geo.cout + g * mg) * hw),
                        (hw, 1),
                        x.as_ptr().add((n * geo.groups + g) * slab),
                        (1, hw),
                        par,
                    );
                }
            }
            return;
        }
        let mut cols = Vec::new();
        let mut first = true;
        for n in 0..geo.n {
            let input = &x[(n * geo.groups + g) * slab..][..slab];
            for &(p0, len) in &tiles {
                cols.resize(kk * len, 0.0);
                im2col(&geo, input, p0, len, &mut cols);
                // Group g owns rows g*mg..(g+1)*mg of dW: disjoint across groups.
                unsafe {
                    let grad_tile = grad.as_ptr().add((n * geo.cout + g * mg) * hw + p0);
                    let dw_g = dst.get().add(g * mg * kk);
                    matmul(
                        (mg, kk, len),
                        dw_g,
                        kk,
                        !first,
                        grad_tile,
                        (hw, 1),
                        cols.as_ptr(),
                        (1, len),
                        par,
                    );
                }
                first = false;
            }
        }
    });
    dw
}

impl CustomOp2 for BackwardWeight {
    fn name(&self) -> &'static str {
        "conv2d-im2col-backward-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let geo = self.geo;
        let (x, grad) = (slice(s1, l1, "input")?, slice(s2, l2, "output gradient")?);
        let mut dw = if direct_dw::prefer_direct_dw(&geo) {
            direct_dw::weight_grad_direct(&geo, x, grad)
        } else if winograd::prefer_winograd(&geo) {
            winograd::weight_grad_winograd(&geo, x, grad)
        } else {
            weight_grad_im2col(&geo, x, grad)
        };
        if let Some(scale) = &self.scale {
            scale_rows(&mut dw, scale);
        }
        Ok((
            CpuStorage::F32(dw),
            Shape::from((geo.cout, geo.cg(), geo.k, geo.k)),
        ))
    }
}

/// The convolution whose forward is the input gradient of `geo`, when `geo` has stride 1 and
/// a kernel wider than 1x1: `dX = conv2d(grad, flip_transpose(W), stride 1, padding k-1-pad,
/// groups)`. Each input pixel gathers the output pixels its taps reached, through the
/// transposed weights flipped in both axes; the padding makes the output `H x W` again. The
/// forward's kernels then compute dX (the direct one for grouped 3x3s, Winograd for the
/// FPN's), with no col2im.
fn transposed(geo: &Geometry) -> Option<Geometry> {
    if geo.stride != 1 || geo.k == 1 || geo.pad > geo.k - 1 {
        return None;
    }
    let w_t = (geo.c, geo.mg(), geo.k, geo.k);
    Geometry::new(
        (geo.n, geo.cout, geo.ho, geo.wo),
        w_t,
        1,
        geo.k - 1 - geo.pad,
        geo.groups,
    )
    .ok()
}

/// `w: [Cout, Cin/G, k, k]` -> `[Cin, Cout/G, k, k]`: per group, input and output channels
/// swapped, and each k x k kernel rotated by 180 degrees.
fn flip_transpose(geo: &Geometry, w: &[f32]) -> Vec<f32> {
    let (cg, mg, k) = (geo.cg(), geo.mg(), geo.k);
    let mut out = vec![0f32; w.len()];
    for g in 0..geo.groups {
        for co in 0..mg {
            for ci in 0..cg {
                let src = &w[((g * mg + co) * cg + ci) * k * k..][..k * k];
                let dst = &mut out[((g * cg + ci) * mg + co) * k * k..][..k * k];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    out
}

/// dX: inputs (grad, w), output `[N, Cin, H, W]`; for stride 1 (k > 1) the forward of the
/// [`transposed`] convolution, else [`input_grad_im2col`]. The weights are `w[co] *
/// scale[co]` when there is a scale.
struct BackwardInput {
    geo: Geometry,
    /// `[Cout]`, as in [`BackwardWeight`].
    scale: Option<Vec<f32>>,
}

/// `dX[n, g] = col2im(W_g^T x grad[n, g])`: inputs `grad: [N, Cout, Ho, Wo]`, `w: [Cout,
/// Cin/G, k, k]` -> `[N, Cin, H, W]`.
fn input_grad_im2col(geo: &Geometry, grad: &[f32], w: &[f32]) -> Vec<f32> {
    let geo = *geo;
    let (hw, kk, mg, slab) = (geo.hw_out(), geo.kk(), geo.mg(), geo.cg() * geo.h * geo.w);
    // Zeros written, not `vec![0f32; _]`: calloc's fresh pages map the shared zero page and
    // col2im's first `+=` on each would take a copy-on-write fault that flushes the TLB of
    // every core. Written in parallel.
    let mut dx = Vec::new();
    (0..geo.n * geo.c * geo.h * geo.w)
        .into_par_iter()
        .map(|_| 0f32)
        .collect_into_vec(&mut dx);
    let tiles = geo.tiles();
    let par = match geo.n * geo.groups >= rayon::current_num_threads() {
        true => Parallelism::None,
        false => Parallelism::Rayon(0),
    };
    let per_slab = |(i, dx_slab): (usize, &mut [f32])| {
        let (n, g) = (i / geo.groups, i % geo.groups);
        if is_plain_1x1(&geo) {
            // No col2im: W_g^T x grad[n, g] is dX[n, g] itself.
            unsafe {
                matmul(
                    (kk, hw, mg),
                    dx_slab.as_mut_ptr(),
                    hw,
                    false,
                    w.as_ptr().add(g * mg * kk),
                    (1, kk),
                    grad.as_ptr().add((n * geo.cout + g * mg) * hw),
                    (hw, 1),
                    par,
                );
            }
            return;
        }
        let mut dcols = Vec::new();
        for &(p0, len) in &tiles {
            dcols.resize(kk * len, 0.0);
            unsafe {
                let w_g_t = w.as_ptr().add(g * mg * kk); // read as [kk, mg]
                let grad_tile = grad.as_ptr().add((n * geo.cout + g * mg) * hw + p0);
                matmul(
                    (kk, len, mg),
                    dcols.as_mut_ptr(),
                    len,
                    false,
                    w_g_t,
                    (1, kk),
                    grad_tile,
                    (hw, 1),
                    par,
                );
            }
            col2im(&geo, &dcols, p0, len, dx_slab);
        }
    };
    if matches!(par, Parallelism::None) {
        dx.par_chunks_mut(slab).enumerate().for_each(per_slab);
    } else {
        dx.chunks_mut(slab).enumerate().for_each(per_slab);
    }
    dx
}

impl CustomOp2 for BackwardInput {
    fn name(&self) -> &'static str {
        "conv2d-im2col-backward-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let geo = self.geo;
        let (grad, w) = (slice(s1, l1, "output gradient")?, slice(s2, l2, "weight")?);
        let scaled = scaled_rows(w, self.scale.as_deref());
        let w = &scaled[..];
        let dx = match transposed(&geo) {
            Some(geo_t) => forward(&geo_t, grad, &flip_transpose(&geo, w), &Epilogue::NONE),
            None => input_grad_im2col(&geo, grad, w),
        };
        Ok((
            CpuStorage::F32(dx),
            Shape::from((geo.n, geo.c, geo.h, geo.w)),
        ))
    }
}
