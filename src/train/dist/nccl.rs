//! NCCL all-reduce on the GPU (feature `cuda`), with a watchdog. Not yet run on a GPU: it is
//! compiled in CI's CUDA check only.
//!
//! Rank 0 creates the NCCL id ([`Id::new`]) and sends its 128 bytes to the others over the
//! TCP star, which also carries everything that is not a gradient (configs, the resume state,
//! evaluation results). Each rank then joins the communicator with `ncclCommInitRank` on its
//! GPU. We call NCCL through cudarc's `result` layer rather than its `Comm` type, because the
//! watchdog must abort the communicator from another thread, and `Comm` does not expose it.
//!
//! Watchdog: a thread checks every 200 ms whether an NCCL call (its enqueue and the stream
//! synchronisation after it) has run longer than `--dist-timeout`. If so it calls
//! `ncclCommAbort`, which makes the pending call return with an error; if the call still has
//! not returned 10 s later, the watchdog prints why and ends the process (exit code 2), so no
//! rank hangs past the timeout, as PyTorch's NCCL watchdog does.
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
use candle_core::cuda_backend::cudarc::nccl::{result, sys, Id};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, Device, Layout, Shape, Tensor};

use super::tcp::TcpCollective;
use super::{Collective, DistError};

/// How long the watchdog waits, after aborting the communicator, for the call to return.
const ABORT_GRACE: Duration = Duration::from_secs(10);

/// What the watchdog watches: the communicator and the call in flight.
struct Watched {
    /// The communicator (null before init and after abort).
    comm: AtomicPtr<sys::ncclComm>,
    /// Milliseconds since `epoch` when the call in flight started (0: none).
    started_ms: AtomicU64,
    epoch: Instant,
    op: Mutex<String>,
    stop: AtomicBool,
    rank: usize,
    timeout: Duration,
}

impl Watched {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn watch(self: Arc<Self>) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let started = self.started_ms.load(Ordering::SeqCst);
            if started == 0 || self.now_ms() - started < self.timeout.as_millis() as u64 {
                continue;
            }
            let op = self.op.lock().map(|o| o.clone()).unwrap_or_default();
            eprintln!(
                "error: rank {}: NCCL {op} did not complete within {} s (--dist-timeout): a rank \
                 died or hung (the other workers' output says which); aborting the communicator",
                self.rank,
                self.timeout.as_secs()
            );
            let comm = self.comm.swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !comm.is_null() {
                // SAFETY: `comm` came from ncclCommInitRank and is swapped out exactly once;
                // ncclCommAbort may be called while another thread is blocked in a call.
                let _ = unsafe { result::comm_abort(comm) };
            }
            std::thread::sleep(ABORT_GRACE);
            if self.started_ms.load(Ordering::SeqCst) == started {
                eprintln!(
                    "error: rank {}: NCCL {op} is still blocked; exiting",
                    self.rank
                );
                std::process::exit(2);
            }
        }
    }

    /// Runs `f` as the watched call `op`.
    fn guard<T>(&self, op: &str, f: impl FnOnce() -> Result<T, DistError>) -> Result<T, DistError> {
        if let Ok(mut o) = self.op.lock() {
            *o = op.to_string();
        }
        self.started_ms.store(self.now_ms(), Ordering::SeqCst);
        let result = f();
        self.started_ms.store(0, Ordering::SeqCst);
        if self.comm.load(Ordering::SeqCst).is_null() {
            return Err(DistError::Nccl(format!(
                "{op} did not complete within {} s (--dist-timeout); the communicator was aborted",
                self.timeout.as_secs()
            )));
        }
        result
    }
}

/// Gradients through NCCL, everything else through the TCP star.
pub struct NcclCollective {
    tcp: TcpCollective,
    device: Device,
    watched: Arc<Watched>,
    watchdog: Option<JoinHandle<()>>,
}

impl NcclCollective {
    /// Joins the NCCL communicator of `tcp`'s world on `device` (a CUDA device).
    pub fn new(
        mut tcp: TcpCollective,
        device: &Device,
        timeout: Duration,
    ) -> Result<Self, DistError> {
        let Device::Cuda(cuda) = device else {
            return Err(DistError::Nccl(format!(
                "NCCL needs a CUDA device, got {device:?}"
            )));
        };
        let (rank, world) = (tcp.rank(), tcp.world_size());
        let own_id = if rank == 0 {
            let id = Id::new().map_err(|e| DistError::Nccl(format!("ncclGetUniqueId: {e:?}")))?;
            id.internal().iter().map(|&c| c as u8).collect()
        } else {
            Vec::new()
        };
        let bytes = tcp.broadcast(&own_id)?;
        let internal: [std::ffi::c_char; 128] = bytes
            .iter()
            .map(|&b| b as std::ffi::c_char)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| DistError::Nccl(format!("rank 0 sent a {}-byte NCCL id", bytes.len())))?;
        let id = Id::uninit(internal);
        let watched = Arc::new(Watched {
            comm: AtomicPtr::new(std::ptr::null_mut()),
            started_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            op: Mutex::new(String::new()),
            stop: AtomicBool::new(false),
            rank,
            timeout,
        });
        let watchdog = {
            let w = watched.clone();
            std::thread::spawn(move || w.watch())
        };
        let stream = cuda.cuda_stream();
        let mut comm: sys::ncclComm_t = std::ptr::null_mut();
        let unique = sys::ncclUniqueId {
            internal: *id.internal(),
        };
        let init = || {
            stream
                .context()
                .bind_to_thread()
                .map_err(|e| DistError::Nccl(format!("binding the CUDA context: {e:?}")))?;
            // SAFETY: `comm` is a valid out-pointer; the id is rank 0's, world and rank checked.
            unsafe { result::comm_init_rank(&mut comm, world as i32, unique, rank as i32) }
                .map(|_| ())
                .map_err(|e| DistError::Nccl(format!("ncclCommInitRank (rank {rank}): {e:?}")))
        };
        // Not abortable yet (no communicator): a hang here ends the process after the timeout.
        if let Err(e) = watched.guard_init(init) {
            watched.stop.store(true, Ordering::Relaxed);
            let _ = watchdog.join();
            return Err(e);
        }
        watched.comm.store(comm, Ordering::SeqCst);
        Ok(NcclCollective {
            tcp,
            device: device.clone(),
            watched,
            watchdog: Some(watchdog),
        })
    }
}

impl Watched {
    /// [`Watched::guard`] for the communicator's creation (before there is one to check).
    fn guard_init(&self, f: impl FnOnce() -> Result<(), DistError>) -> Result<(), DistError> {
        if let Ok(mut o) = self.op.lock() {
            *o = "ncclCommInitRank".into();
        }
        self.started_ms.store(self.now_ms(), Ordering::SeqCst);
        let result = f();
        self.started_ms.store(0, Ordering::SeqCst);
        result
    }
}

impl Drop for NcclCollective {
    fn drop(&mut self) {
        self.watched.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        let comm = self
            .watched
            .comm
            .swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !comm.is_null() {
            // SAFETY: swapped out once; no call is in flight (we are being dropped).
            let _ = unsafe { result::comm_abort(comm) };
        }
    }
}

/// `ncclAllReduce(sum)` of a contiguous f32 CUDA tensor into a new one.
struct AllReduceSum {
    watched: Arc<Watched>,
}

impl CustomOp1 for AllReduceSum {
    fn name(&self) -> &'static str {
        "nccl-all-reduce-sum"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("nccl-all-reduce-sum: the tensor is on the CPU, NCCL needs a CUDA one")
    }

    fn cuda_fwd(
        &self,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("nccl-all-reduce-sum: the tensor must be contiguous");
        };
        let comm = self.watched.comm.load(Ordering::SeqCst);
        if comm.is_null() {
            candle_core::bail!("nccl-all-reduce-sum: the communicator was aborted");
        }
        let device = storage.device().clone();
        let stream = device.cuda_stream();
        let src = storage.as_cuda_slice::<f32>()?.slice(start..end);
        let n = end - start;
        let mut dst = stream
            .alloc_zeros::<f32>(n)
            .map_err(candle_core::Error::wrap)?;
        {
            let (src_ptr, _src_sync) = src.device_ptr(&stream);
            let (dst_ptr, _dst_sync) = dst.device_ptr_mut(&stream);
            // SAFETY: both buffers hold `n` f32 on this device and outlive the enqueued call
            // (the stream is synchronised before either is freed: SyncOnDrop and candle's
            // single stream); `comm` is live (checked above; aborts only swap it out).
            unsafe {
                result::all_reduce(
                    src_ptr as *const std::ffi::c_void,
                    dst_ptr as *mut std::ffi::c_void,
                    n,
                    sys::ncclDataType_t::ncclFloat32,
                    sys::ncclRedOp_t::ncclSum,
                    comm,
                    stream.cu_stream() as sys::cudaStream_t,
                )
            }
            .map_err(|e| candle_core::Error::Msg(format!("ncclAllReduce: {e:?}")))?;
        }
        Ok((
            CudaStorage::wrap_cuda_slice(dst, device),
            layout.shape().clone(),
        ))
    }
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.tcp.rank()
    }

    fn world_size(&self) -> usize {
        self.tcp.world_size()
    }

    fn all_reduce_sum(&mut self, flat: &Tensor) -> Result<Tensor, DistError> {
        let on_gpu = flat
            .to_device(&self.device)?
            .to_dtype(candle_core::DType::F32)?
            .contiguous()?;
        let op = AllReduceSum {
            watched: self.watched.clone(),
        };
        let device = self.device.clone();
        let sum = self.watched.guard("all_reduce", || {
            let sum = on_gpu.apply_op1_no_bwd(&op)?;
            device.synchronize()?;
            Ok(sum)
        });
        let sum = match sum {
            Ok(s) => s,
            Err(e) => {
                self.tcp.abort(&e.to_string());
                return Err(e);
            }
        };
        Ok(sum.to_device(flat.device())?)
    }

    fn broadcast(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DistError> {
        self.tcp.broadcast(bytes)
    }

    fn gather(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        self.tcp.gather(bytes)
    }

    fn abort(&mut self, message: &str) {
        self.tcp.abort(message);
    }
}
