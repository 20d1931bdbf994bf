//! `top_k`: per row, the indices of the `k` largest values, best first (torch's
//! `topk(k, dim=1, sorted=True).indices`), without reading the values to the host.
//!
//! Order: larger first; equal values by lower index (a stable descending sort, so the
//! result does not depend on the device); NaN after every number. candle has no top-k and its
//! CUDA argsort is limited to rows of 8,192, hence this op: on the CPU a selection
//! (`select_nth_unstable_by`) then a sort of the `k` chosen; on CUDA a bitonic sort of each
//! padded row in global memory (`heads/kernels/top_k.cu`).

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use super::error::{check_dtype, check_same_device, check_shape};

const OP: &str = "top_k";

/// Indices of the `min(k, N)` largest values of each row, best first.
///
/// # Shapes
/// `x [B, N]` f32 → U32 `[B, min(k, N)]`
pub fn top_k(x: &Tensor, k: usize) -> Result<Tensor> {
    check_same_device(OP, &[("x", x)])?;
    check_shape(OP, "x", x, &[None, None])?;
    check_dtype(OP, "x", x, &[DType::F32], "f32")?;
    x.contiguous()?.apply_op1_no_bwd(&TopK { k })
}

struct TopK {
    k: usize,
}

impl CustomOp1 for TopK {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        // top_k() checked the dtype.
        let data = super::cpu_slice::<f32>(OP, s, l)?;
        let (rows, n) = l.shape().dims2()?;
        let k = self.k.min(n);
        let mut out = Vec::with_capacity(rows * k);
        for r in 0..rows {
            out.extend(cpu::top_k(&data[r * n..(r + 1) * n], k));
        }
        Ok((CpuStorage::U32(out), Shape::from((rows, k))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (rows, n) = l.shape().dims2()?;
        let k = self.k.min(n);
        Ok((cuda::top_k(s, l, rows, n, k)?, Shape::from((rows, k))))
    }
}

#[cfg(test)]
mod tests;
