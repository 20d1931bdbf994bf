//! Inference convolution with its epilogue fused: `relu?(conv(x, w) + bias + residual)` in one
//! pass of the kernel. No autograd: the result is a fresh tensor without an op, so this entry
//! refuses inputs that need a gradient (the caller composes differentiable ops instead).
use candle_core::{CpuStorage, DType, Result, Storage, Tensor};

use super::epilogue::Epilogue;
use super::forward::forward_cached;
use super::im2col::Geometry;
use super::winograd4::{prepare_winograd, CachedFilters, FilterCache};

/// `relu?(conv2d(x, weight, stride, padding, groups) + bias + residual)` on CPU f32 tensors,
/// for inference. `filters`, when given, keeps what the kernel derives from `weight` alone
/// between calls (one cache per conv layer; see [`FilterCache`] for why this is sound).
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin / groups, k, k]`, `bias: [Cout]`,
/// `residual: [N, Cout, Ho, Wo]` -> `[N, Cout, Ho, Wo]`
#[allow(clippy::too_many_arguments)]
pub fn conv2d_fused(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
    relu: bool,
    stride: usize,
    padding: usize,
    groups: usize,
    filters: Option<&FilterCache>,
) -> Result<Tensor> {
    let geo = Geometry::new(x.dims4()?, weight.dims4()?, stride, padding, groups)?;
    let out_dims = [geo.n, geo.cout, geo.ho, geo.wo];
    if let Some(b) = bias {
        if b.dims() != [geo.cout] {
            candle_core::bail!("conv2d_fused: bias {:?}, expected [{}]", b.dims(), geo.cout)
        }
    }
    if let Some(r) = residual {
        if r.dims() != out_dims {
            candle_core::bail!(
                "conv2d_fused: residual {:?}, expected {out_dims:?}",
                r.dims()
            )
        }
    }
    let all = [Some(x), Some(weight), bias, residual];
    if all.iter().flatten().any(|t| t.track_op()) {
        candle_core::bail!("conv2d_fused: inference only, but an input needs a gradient")
    }
    // Keyed by the caller's tensor: `contiguous` may return a new one each call.
    let filters = filters.map(|cache| CachedFilters {
        cache,
        weight: weight.id(),
    });
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    let residual = residual.map(|r| r.contiguous()).transpose()?;
    let bias_host = bias.map(|b| b.to_vec1::<f32>()).transpose()?;
    let out = with_f32(&x, "input", |x| {
        with_f32(&weight, "weight", |w| match &residual {
            Some(r) => with_f32(r, "residual", |r| {
                let ep = Epilogue {
                    bias: bias_host.as_deref(),
                    residual: Some(r),
                    relu,
                };
                Ok(forward_cached(&geo, x, w, &ep, filters))
            }),
            None => {
                let ep = Epilogue {
                    bias: bias_host.as_deref(),
                    residual: None,
                    relu,
                };
                Ok(forward_cached(&geo, x, w, &ep, filters))
            }
        })
    })?;
    Tensor::from_vec(out, out_dims.as_slice(), x.device())
}

/// Fills `cache` for `weight` now, when the inference kernel for this conv derives filters
/// from its weight (a dense stride-1 3x3 with >= 64 input channels, on CPU in f32, with no
/// gradient); else leaves it alone. Called at model load, so that the filters sit in memory
/// allocated before any activation: filled lazily at the first image, each took memory that
/// later activations would have reused (peak RSS of an X101 predict +100 MB for 47 MB of
/// filters).
pub fn prepare_filters(
    cache: &FilterCache,
    weight: &Tensor,
    stride: usize,
    groups: usize,
) -> Result<()> {
    if weight.track_op() || !weight.device().is_cpu() || weight.dtype() != DType::F32 {
        return Ok(());
    }
    let (cout, cg, k, k2) = weight.dims4()?;
    // Only the channels and the kernel matter for the filters: any input size will do.
    let geo = Geometry::new(
        (1, cg * groups, k, k),
        (cout, cg, k, k2),
        stride,
        k / 2,
        groups,
    )?;
    let weight_c = weight.contiguous()?;
    with_f32(&weight_c, "weight", |w| {
        prepare_winograd(cache, weight.id(), &geo, w);
        Ok(())
    })
}

/// Runs `f` on the data of a contiguous CPU f32 tensor.
fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let data = match &*storage {
        Storage::Cpu(CpuStorage::F32(d)) => d.as_slice(),
        _ => candle_core::bail!(
            "conv2d_fused: {what} must be an f32 CPU tensor, got {:?} on {:?}",
            t.dtype(),
            t.device().location()
        ),
    };
    match layout.contiguous_offsets() {
        Some((a, b)) => f(&data[a..b]),
        None => candle_core::bail!("conv2d_fused: {what} must be contiguous"),
    }
}
