//! `nonzero` on CUDA: `heads/kernels/nonzero.cu` (one block, chunked count + scan + write),
//! then the count copied to the host (one scalar) and the indices copied into an exactly
//! sized buffer.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result};

use crate::ops::cuda_util::kernel;

const SRC: &str = include_str!("../../../kernels/nonzero.cu");
const MODULE: &str = "detect_nonzero";
const THREADS: u32 = 1024;

/// The indices (U32 storage) and their count.
pub(super) fn nonzero(mask: &CudaStorage, l: &Layout) -> Result<(CudaStorage, usize)> {
    let dev = mask.device.clone();
    let n = l.shape().elem_count();
    // Never allocate 0 bytes (the driver refuses).
    let mut all = dev.alloc_zeros::<u32>(n.max(1))?;
    let mut count = dev.alloc_zeros::<u32>(1)?;
    if n > 0 {
        let view = mask.as_cuda_slice::<u8>()?.slice(l.start_offset()..);
        let f = kernel(&dev, MODULE, SRC, "nonzero_u8")?;
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&f);
        let n_i64 = n as i64;
        b.arg(&view);
        b.arg(&n_i64);
        b.arg(&mut all);
        b.arg(&mut count);
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match `nonzero_u8` in nonzero.cu; `view` holds n u8 values,
        // `all` n u32 slots (at most n are written) and `count` one u32.
        unsafe { b.launch(cfg) }.w()?;
    }
    // The one host read of this op (recorded by the caller as "nonzero: count").
    let m = dev.clone_dtoh(&count)?[0] as usize;
    let mut out = dev.alloc_zeros::<u32>(m.max(1))?;
    if m > 0 {
        dev.memcpy_dtod(&all.slice(..m), &mut out)?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), m))
}
