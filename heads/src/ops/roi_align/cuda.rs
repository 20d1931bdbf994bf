//! RoIAlign on CUDA: launches `heads/kernels/roi_align.cu` (compiled by NVRTC, see
//! `ops/cuda_util.rs`). One thread per pooled element; the backward scatters with atomicAdd.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result};

use super::{Dims, Params};
use crate::ops::cuda_util::kernel;

const SRC: &str = include_str!("../../../kernels/roi_align.cu");
const MODULE: &str = "detect_roi_align";
const THREADS: u32 = 256;

fn config(total: usize) -> LaunchConfig {
    let blocks = total.div_ceil(THREADS as usize).clamp(1, 1 << 20) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Runs `func` of roi_align.cu: `(src, rois) -> dst` of `dst_len` floats (zeroed first), with
/// `total` = the number of pooled elements.
#[allow(clippy::too_many_arguments)]
fn launch(
    func: &str,
    src: &CudaStorage,
    l_src: &Layout,
    rois: &CudaStorage,
    l_rois: &Layout,
    total: usize,
    dst_len: usize,
    d: Dims,
    p: Params,
) -> Result<CudaStorage> {
    let dev = src.device.clone();
    // Never allocate 0 bytes (the driver refuses); an empty result keeps a 1-float buffer.
    let mut dst = dev.alloc_zeros::<f32>(dst_len.max(1))?;
    // An empty feature map has nothing to sample: every output (and gradient) stays zero.
    if total > 0 && d.h > 0 && d.w > 0 {
        let src_view = src.as_cuda_slice::<f32>()?.slice(l_src.start_offset()..);
        let rois_view = rois.as_cuda_slice::<f32>()?.slice(l_rois.start_offset()..);
        let f = kernel(&dev, MODULE, SRC, func)?;
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&f);
        let total_i64 = total as i64;
        let dims = [d.n, d.c, d.h, d.w, p.pooled_h, p.pooled_w].map(|v| v as i32);
        let sampling_ratio = p.sampling_ratio.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let aligned = i32::from(p.aligned);
        b.arg(&src_view);
        b.arg(&rois_view);
        b.arg(&mut dst);
        b.arg(&total_i64);
        for v in &dims {
            b.arg(v);
        }
        b.arg(&p.spatial_scale);
        b.arg(&sampling_ratio);
        b.arg(&aligned);
        // SAFETY: the arguments match the kernel's signature in roi_align.cu; `src` holds the
        // contiguous features (forward) or pooled gradient (backward), `rois` K*5 floats, and
        // `dst` the K*C*ph*pw outputs (forward) or N*C*H*W gradient (backward) it indexes.
        unsafe { b.launch(config(total)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(dst, dev))
}

pub(crate) fn forward(
    input: &CudaStorage,
    l_input: &Layout,
    rois: &CudaStorage,
    l_rois: &Layout,
    k: usize,
    d: Dims,
    p: Params,
) -> Result<CudaStorage> {
    let total = k * d.c * p.pooled_h * p.pooled_w;
    launch(
        "roi_align_forward",
        input,
        l_input,
        rois,
        l_rois,
        total,
        total,
        d,
        p,
    )
}

pub(crate) fn backward(
    grad: &CudaStorage,
    l_grad: &Layout,
    rois: &CudaStorage,
    l_rois: &Layout,
    k: usize,
    d: Dims,
    p: Params,
) -> Result<CudaStorage> {
    let total = k * d.c * p.pooled_h * p.pooled_w;
    launch(
        "roi_align_backward",
        grad,
        l_grad,
        rois,
        l_rois,
        total,
        d.n * d.c * d.h * d.w,
        d,
        p,
    )
}
