//! GPU NMS: the bitmask kernel (`heads/kernels/nms.cu`) computes every above-diagonal IoU
//! test in parallel; the host sorts the scores first (candle's CUDA argsort fails on rows
//! over 8,192) and walks the mask rows at the end, as torchvision's CUDA op does.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{Result, Storage, Tensor};

use super::cpu::{f32_threshold, score_order};
use crate::ops::cuda_util::{cuda_device, kernel};
use crate::ops::transfer;

const SRC: &str = include_str!("../../../kernels/nms.cu");
const BLOCK: usize = 64;

pub(crate) fn nms(boxes: &Tensor, scores: &Tensor, iou_threshold: f64) -> Result<Tensor> {
    let n = boxes.dim(0)?;
    let device = boxes.device();
    if n == 0 {
        return Tensor::from_vec(Vec::<u32>::new(), 0, device);
    }
    let order = score_order(&transfer::read::<f32>("nms: scores", scores)?);
    let order_t = transfer::upload(order.clone(), n, device)?;
    let sorted = boxes.index_select(&order_t, 0)?.contiguous()?; // [N, 4] by decreasing score
    let col_blocks = n.div_ceil(BLOCK);
    let dev = cuda_device(boxes)?;
    let mut mask = dev.alloc_zeros::<u64>(n * col_blocks)?;
    {
        let (storage, layout) = sorted.storage_and_layout();
        let Storage::Cuda(cs) = &*storage else {
            candle_core::bail!("nms: sorted boxes are not on the CUDA device");
        };
        let sorted_boxes = cs.as_cuda_slice::<f32>()?.slice(layout.start_offset()..);
        let func = kernel(&dev, "detect_nms", SRC, "nms_mask")?;
        let stream = dev.cuda_stream();
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
    }
    let mask = dev.clone_dtoh(&mask)?;
    transfer::note_read("nms: mask", device, mask.len(), mask.len() * 8);
    let mut removed = vec![0u64; col_blocks];
    let mut keep = Vec::new();
    for i in 0..n {
        let (block, bit) = (i / BLOCK, i % BLOCK);
        if removed[block] >> bit & 1 == 0 {
            keep.push(order[i]);
            let row = &mask[i * col_blocks..(i + 1) * col_blocks];
            for (r, m) in removed[block..].iter_mut().zip(&row[block..]) {
                *r |= m;
            }
        }
    }
    let k = keep.len();
    transfer::upload(keep, k, device)
}
