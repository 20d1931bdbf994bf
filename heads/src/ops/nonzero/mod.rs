//! `nonzero`: the ascending indices of the non-zero entries of a 1-D mask (torch's
//! `nonzero().squeeze(1)` / `torch.where(mask)[0]`), the one op that turns a device-side
//! condition into indices without reading the mask to the host.
//!
//! The result's length depends on the data. On the CPU the kernel knows it as it writes; on
//! CUDA one scalar (the count) is copied to the host. That count is recorded as a host read
//! (`"nonzero: count"`, see [`transfer`](super::transfer)) on every device, so a CPU test sees
//! the same synchronisation points as a GPU run.

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use super::error::{check_dtype, check_same_device, check_shape};
use super::transfer;

const OP: &str = "nonzero";

/// Indices of the non-zero entries of `mask`, ascending.
///
/// # Shapes
/// `mask [N]` u8 (what candle's comparisons return) → U32 `[M]`, `M` = non-zero count
pub fn nonzero(mask: &Tensor) -> Result<Tensor> {
    check_same_device(OP, &[("mask", mask)])?;
    check_shape(OP, "mask", mask, &[None])?;
    check_dtype(OP, "mask", mask, &[DType::U8], "u8")?;
    let out = mask.contiguous()?.apply_op1_no_bwd(&NonZero)?;
    transfer::note_read("nonzero: count", mask.device(), 1, 4);
    Ok(out)
}

struct NonZero;

impl CustomOp1 for NonZero {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        // nonzero() checked the dtype.
        let out = cpu::nonzero(super::cpu_slice::<u8>(OP, s, l)?);
        let m = out.len();
        Ok((CpuStorage::U32(out), Shape::from(m)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (out, m) = cuda::nonzero(s, l)?;
        Ok((out, Shape::from(m)))
    }
}

#[cfg(test)]
mod tests;
