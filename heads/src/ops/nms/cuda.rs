//! GPU NMS, all on the device: the scores are ordered by our `top_k` kernel (a stable
//! descending bitonic sort; candle's CUDA argsort fails on rows over 8,192), the bitmask kernel
//! (`heads/kernels/nms.cu`, `nms_mask`) computes every above-diagonal IoU test in parallel,
//! and `nms_keep` walks the rows in score order in one block, writing a keep flag per box;
//! `nonzero` turns the flags into positions (its count is the one scalar read to the host).
//! Neither the scores nor the mask leave the device.
//!
//! NaN scores come first, as on the CPU (torch's descending sort); they are ordered as +inf
//! (by index among themselves and any +inf score).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Result, Storage, Tensor};

use super::cpu::f32_threshold;
use crate::ops::cuda_util::{cuda_device, kernel};
use crate::ops::{nonzero, top_k};

const SRC: &str = include_str!("../../../kernels/nms.cu");
const BLOCK: usize = 64;
/// Threads of the one `nms_keep` block.
const KEEP_THREADS: u32 = 256;
/// `nms_keep` keeps one u64 per column block in shared memory: 48 KiB of it hold the flags of
/// 393,216 boxes (whose mask alone would be 18 GiB).
const MAX_BOXES: usize = 48 * 1024 / 8 * BLOCK;

pub(crate) fn nms(boxes: &Tensor, scores: &Tensor, iou_threshold: f64) -> Result<Tensor> {
    let n = boxes.dim(0)?;
    let device = boxes.device();
    if n == 0 {
        return Tensor::from_vec(Vec::<u32>::new(), 0, device);
    }
    if n > MAX_BOXES {
        candle_core::bail!("nms: {n} boxes on CUDA, at most {MAX_BOXES} (filter them first)")
    }
    // NaN first: as +inf, which top_k puts before every number.
    let is_nan = scores.ne(scores)?;
    let inf = Tensor::full(f32::INFINITY, n, device)?;
    let key = is_nan.where_cond(&inf, scores)?;
    let order = top_k(&key.reshape((1, n))?, n)?.reshape(n)?; // U32 [N], by decreasing score
    let sorted = boxes.index_select(&order, 0)?.contiguous()?; // [N, 4]
    let col_blocks = n.div_ceil(BLOCK);
    let dev = cuda_device(boxes)?;
    // SAFETY: `nms_keep` reads only the words of row i from i's own column block on, all of
    // which `nms_mask` writes (its blocks on and above the diagonal).
    let mut mask = unsafe { dev.alloc::<u64>(n * col_blocks)? };
    // SAFETY: every flag is written by `nms_keep` (it clears them first).
    let mut keep = unsafe { dev.alloc::<u8>(n)? };
    {
        let (storage, layout) = sorted.storage_and_layout();
        let Storage::Cuda(cs) = &*storage else {
            candle_core::bail!("nms: sorted boxes are not on the CUDA device");
        };
        let sorted_boxes = cs.as_cuda_slice::<f32>()?.slice(layout.start_offset()..);
        let stream = dev.cuda_stream();
        let func = kernel(&dev, "detect_nms", SRC, "nms_mask")?;
        let mut launch = stream.launch_builder(&func);
        let (n_i32, threshold) = (n as i32, f32_threshold(iou_threshold));
        launch.arg(&sorted_boxes);
        launch.arg(&n_i32);
        launch.arg(&threshold);
        launch.arg(&mut mask);
        let cfg = LaunchConfig {
            grid_dim: (col_blocks as u32, col_blocks as u32, 1),
            block_dim: (BLOCK as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the argument list matches `nms_mask` in nms.cu; `sorted_boxes` holds N*4
        // f32 and `mask` N*col_blocks u64, the extents the kernel indexes.
        unsafe { launch.launch(cfg) }.w()?;

        let func = kernel(&dev, "detect_nms", SRC, "nms_keep")?;
        let mut launch = stream.launch_builder(&func);
        launch.arg(&mask);
        launch.arg(&n_i32);
        launch.arg(&mut keep);
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (KEEP_THREADS, 1, 1),
            shared_mem_bytes: (col_blocks * 8) as u32,
        };
        // SAFETY: the argument list matches `nms_keep`; `mask` holds N*col_blocks u64, `keep`
        // N bytes, and the shared memory one u64 per column block (col_blocks <= 6,144 by
        // MAX_BOXES, within the 48 KiB a block may take without opting in).
        unsafe { launch.launch(cfg) }.w()?;
    }
    let keep = Tensor::from_storage(
        Storage::Cuda(CudaStorage::wrap_cuda_slice(keep, dev.clone())),
        n,
        candle_core::op::BackpropOp::none(),
        false,
    );
    let positions = nonzero(&keep)?; // U32 [K], ascending = by decreasing score
    order.index_select(&positions, 0)
}
