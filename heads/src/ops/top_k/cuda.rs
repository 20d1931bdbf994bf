//! `top_k` on CUDA: `heads/kernels/top_k.cu`, a bitonic sort of each row (padded to a power
//! of two) in global memory, then the first `k` indices of each row copied out.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result};

use crate::ops::cuda_util::kernel;

const SRC: &str = include_str!("../../../kernels/top_k.cu");
const MODULE: &str = "detect_top_k";
const THREADS: u32 = 256;

fn config(total: usize) -> LaunchConfig {
    let blocks = total.div_ceil(THREADS as usize).max(1) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

pub(super) fn top_k(
    x: &CudaStorage,
    l: &Layout,
    rows: usize,
    n: usize,
    k: usize,
) -> Result<CudaStorage> {
    let dev = x.device.clone();
    let mut out = dev.alloc_zeros::<u32>((rows * k).max(1))?;
    if rows * k == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let padded = n.next_power_of_two();
    let total = rows * padded;
    let mut keys = dev.alloc_zeros::<f32>(total)?;
    let mut idx = dev.alloc_zeros::<u32>(total)?;
    let view = x.as_cuda_slice::<f32>()?.slice(l.start_offset()..);
    let stream = dev.cuda_stream();
    let (rows_i, n_i, padded_i, k_i) = (rows as i64, n as i64, padded as i64, k as i64);
    {
        let f = kernel(&dev, MODULE, SRC, "top_k_init")?;
        let mut b = stream.launch_builder(&f);
        b.arg(&view);
        b.arg(&rows_i);
        b.arg(&n_i);
        b.arg(&padded_i);
        b.arg(&mut keys);
        b.arg(&mut idx);
        // SAFETY: matches `top_k_init`; `view` holds rows*n f32, `keys`/`idx` rows*padded.
        unsafe { b.launch(config(total)) }.w()?;
    }
    let step = kernel(&dev, MODULE, SRC, "top_k_step")?;
    let mut size = 2usize;
    while size <= padded {
        let mut j = size / 2;
        while j > 0 {
            let (size_i, j_i) = (size as i64, j as i64);
            let mut b = stream.launch_builder(&step);
            b.arg(&mut keys);
            b.arg(&mut idx);
            b.arg(&rows_i);
            b.arg(&padded_i);
            b.arg(&size_i);
            b.arg(&j_i);
            // SAFETY: matches `top_k_step`; both buffers hold rows*padded elements and every
            // index the kernel forms stays inside its row.
            unsafe { b.launch(config(total)) }.w()?;
            j /= 2;
        }
        size *= 2;
    }
    {
        let f = kernel(&dev, MODULE, SRC, "top_k_take")?;
        let mut b = stream.launch_builder(&f);
        b.arg(&idx);
        b.arg(&rows_i);
        b.arg(&padded_i);
        b.arg(&k_i);
        b.arg(&mut out);
        // SAFETY: matches `top_k_take`; `idx` holds rows*padded u32, `out` rows*k.
        unsafe { b.launch(config(rows * k)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}
