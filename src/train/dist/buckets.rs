//! The gradient all-reduce after backward: every trainable parameter's gradient is flattened
//! into buckets of about [`BUCKET_BYTES`] (one collective call each, as PyTorch DDP's 25 MiB
//! buckets), summed over the ranks, divided by the world size and put back.
//!
//! A parameter that has no gradient on a rank (no path from its loss) counts as zeros there;
//! one flag per parameter rides along, so a parameter that has a gradient on no rank is left
//! without one, as a single process would leave it (SGD then skips it). Small values the
//! caller wants summed (e.g. the step's losses) ride along too.
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use super::{Collective, DistError};

/// Bytes of gradient per collective call (PyTorch DDP's `bucket_cap_mb` default, 25 MiB).
pub const BUCKET_BYTES: usize = 25 << 20;

/// Replaces the gradients of `params` in `grads` by their mean over the ranks, and returns
/// the sum over the ranks of `extra`.
pub fn all_reduce_mean(
    collective: &mut dyn Collective,
    params: &[(String, Var)],
    grads: &mut GradStore,
    extra: &[f32],
) -> Result<Vec<f32>, DistError> {
    let Some((_, first)) = params.first() else {
        let device = candle_core::Device::Cpu;
        let flat = Tensor::new(extra, &device)?;
        return Ok(collective.all_reduce_sum(&flat)?.to_vec1::<f32>()?);
    };
    let device = first.device().clone();
    // The pieces, in order: each parameter's gradient (flat, f32), then the trailer.
    let mut pieces = Vec::with_capacity(params.len() + 1);
    let mut present = Vec::with_capacity(params.len());
    for (_, var) in params {
        let n = var.elem_count();
        match grads.get(var.as_tensor()) {
            Some(g) => {
                pieces.push(g.flatten_all()?.to_dtype(DType::F32)?);
                present.push(1f32);
            }
            None => {
                pieces.push(Tensor::zeros(n, DType::F32, &device)?);
                present.push(0f32);
            }
        }
    }
    let trailer: Vec<f32> = present.iter().chain(extra).copied().collect();
    pieces.push(Tensor::new(trailer.as_slice(), &device)?);
    let reduced = reduce_in_buckets(collective, &pieces)?;

    let world = collective.world_size() as f64;
    let trailer = reduced[params.len()].to_vec1::<f32>()?;
    for (((_, var), sum), &count) in params.iter().zip(&reduced).zip(&trailer) {
        if count == 0.0 {
            grads.remove(var.as_tensor());
            continue;
        }
        let mean = sum
            .affine(1.0 / world, 0.0)?
            .reshape(var.shape())?
            .to_dtype(var.dtype())?;
        grads.insert(var.as_tensor(), mean);
    }
    Ok(trailer[params.len()..].to_vec())
}

/// Sums each 1-D piece over the ranks, in buckets of about [`BUCKET_BYTES`].
fn reduce_in_buckets(
    collective: &mut dyn Collective,
    pieces: &[Tensor],
) -> Result<Vec<Tensor>, DistError> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut start = 0;
    while start < pieces.len() {
        // At least one piece per bucket, then more while they fit.
        let mut end = start + 1;
        let mut bytes = pieces[start].elem_count() * 4;
        while end < pieces.len() && bytes + pieces[end].elem_count() * 4 <= BUCKET_BYTES {
            bytes += pieces[end].elem_count() * 4;
            end += 1;
        }
        let bucket = Tensor::cat(&pieces[start..end], 0)?;
        let sum = collective.all_reduce_sum(&bucket)?;
        let mut offset = 0;
        for piece in &pieces[start..end] {
            let n = piece.elem_count();
            out.push(sum.narrow(0, offset, n)?);
            offset += n;
        }
        start = end;
    }
    Ok(out)
}
