//! Uploads of large f32 tensors (the image batches) through page-locked ("pinned") host memory
//! on a copy stream of their own, so that the copy overlaps with the kernels still queued on
//! candle's compute stream (the previous step's backward and optimizer), as PyTorch's
//! `DataLoader(pin_memory=True)` with `.to(device, non_blocking=True)` does.
//!
//! Per (thread, device): one copy stream and two pinned staging buffers used in turn (grown when
//! a batch needs more). A staging buffer is refilled (or freed) only after its previous copy
//! finished (an event recorded after each copy). The host-to-device copy lands in a buffer of
//! the copy stream; candle's compute stream then waits for it and copies it device-to-device
//! into a buffer of its own, which is what the tensor holds. That extra copy (on-device
//! bandwidth: estimated, not measured, at about 0.1 ms for a batch of 8 at 800x1344 on an
//! H200) is the price of correctness: several of
//! candle's ops record their reads of a buffer on the buffer's own stream, so a tensor holding a
//! copy-stream buffer could be freed, and the memory reused by the next upload, before candle's
//! stream had read it. cudarc's event tracking (on in candle's contexts; without it the
//! ordinary upload is used) orders the copy before that device-to-device read and the free of
//! the copy-stream buffer after it. Creating the copy stream turns on cudarc's multi-stream
//! event bookkeeping for the whole context (an event per kernel argument): a cost to measure
//! on the GPU.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::cuda_backend::cudarc::driver::{CudaEvent, CudaStream, PinnedHostSlice};
use candle_core::cuda_backend::{CudaDevice, DeviceId};
use candle_core::op::BackpropOp;
use candle_core::{CpuStorage, CudaStorage, DType, Result, Storage, Tensor};

/// Tensors smaller than this go through candle's ordinary upload (a pinned copy is not worth
/// its staging for a few boxes or labels).
const MIN_BYTES: usize = 1 << 20;

struct Staging {
    buffer: PinnedHostSlice<f32>,
    /// Recorded on the copy stream after the last copy out of `buffer`.
    copied: Option<CudaEvent>,
}

impl Drop for Staging {
    /// The pinned memory is freed only after the copy reading it is done.
    fn drop(&mut self) {
        if let Some(e) = &self.copied {
            let _ = e.synchronize();
        }
    }
}

struct Uploader {
    stream: Arc<CudaStream>,
    staging: [Option<Staging>; 2],
    next: usize,
}

thread_local! {
    static UPLOADERS: RefCell<HashMap<DeviceId, Uploader>> = RefCell::new(HashMap::new());
}

fn err(e: impl std::fmt::Debug) -> candle_core::Error {
    candle_core::Error::Msg(format!("pinned upload: {e:?}"))
}

/// Whether [`upload`] takes `t` to `dev`: a CPU f32 tensor of at least [`MIN_BYTES`], and event
/// tracking on.
pub(super) fn applies(t: &Tensor, dev: &CudaDevice) -> bool {
    t.device().is_cpu()
        && t.dtype() == DType::F32
        && t.elem_count() * 4 >= MIN_BYTES
        && dev.is_event_tracking()
}

/// `t` (a CPU f32 tensor) on `dev`, copied from pinned memory on the copy stream.
pub(super) fn upload(t: &Tensor, dev: &CudaDevice) -> Result<Tensor> {
    let t = t.contiguous()?;
    let n = t.elem_count();
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
        candle_core::bail!(
            "pinned upload: expected a CPU f32 tensor, got {:?}",
            t.dtype()
        )
    };
    let host = &data[layout.start_offset()..layout.start_offset() + n];
    let slice = UPLOADERS.with(|u| -> Result<_> {
        let mut u = u.borrow_mut();
        let up = match u.entry(dev.id()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let stream = dev.cuda_stream().context().new_stream().map_err(err)?;
                e.insert(Uploader {
                    stream,
                    staging: [None, None],
                    next: 0,
                })
            }
        };
        let k = up.next;
        up.next = 1 - k;
        let stream = up.stream.clone();
        let slot = &mut up.staging[k];
        if let Some(Staging {
            copied: Some(e), ..
        }) = slot
        {
            e.synchronize().map_err(err)?; // its previous copy is done: free to refill
        }
        if slot.as_ref().is_none_or(|s| s.buffer.len() < n) {
            *slot = None;
            // SAFETY: the first n floats are written below before the copy reads them; the
            // rest is never read.
            let buffer = unsafe { stream.context().alloc_pinned::<f32>(n) }.map_err(err)?;
            *slot = Some(Staging {
                buffer,
                copied: None,
            });
        }
        let staging = slot.as_mut().expect("allocated above");
        let pinned = &mut staging.buffer.as_mut_slice().map_err(err)?[..n];
        pinned.copy_from_slice(host);
        // SAFETY: the copy below writes all n floats before anything reads them.
        let mut dst = unsafe { stream.alloc::<f32>(n) }.map_err(err)?;
        // A plain slice of pinned memory: the driver copies it asynchronously (cudarc does
        // not wait for it, hence the event).
        stream.memcpy_htod(&*pinned, &mut dst).map_err(err)?;
        staging.copied = Some(stream.record_event(None).map_err(err)?);
        // The compute stream waits for the copy (without blocking the host), then takes the
        // data into a buffer of its own (see the module docs); `dst` is freed on the copy
        // stream after that read.
        let compute = dev.cuda_stream();
        compute.join(&stream).map_err(err)?;
        compute.clone_dtod(&dst).map_err(err)
    })?;
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(slice, dev.clone()));
    Ok(Tensor::from_storage(
        storage,
        t.shape().clone(),
        BackpropOp::none(),
        false,
    ))
}
