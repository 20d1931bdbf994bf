//! The one door between host and device in the step path: every read of tensor values into
//! host memory ([`read`], [`read_scalar`]) and every upload of host data ([`upload`],
//! [`to_device`]) goes through here, and is counted.
//!
//! Counting is per thread and per scope: [`Recorder::start`] begins a record on the current
//! thread, [`Recorder::finish`] returns it. Nothing is recorded outside a scope (the cost is
//! one thread-local check), and parallel tests on other threads never see each other's reads.
//!
//! Two tallies are kept:
//! - **host reads / uploads** on *every* device, with the site that made them (a `&'static
//!   str`) and the largest element count of one read. On a CPU device a read is only a copy,
//!   but the step's code path is the same as on CUDA, so a CPU test can check where the path
//!   would synchronise and how much it would copy.
//! - **transfers**: the reads and uploads whose device is not the CPU, i.e. the ones that cross
//!   the bus. On a CPU run this stays 0.
//!
//! Some values have to reach the host without a tensor read: the size of a data-dependent
//! result (the `nonzero` op) is known on the CPU for free but is one scalar copy on
//! CUDA. Such ops call [`note_read`] on every device so that the CPU record shows the same
//! synchronisation points as a CUDA run.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::{Device, Result, Shape, Tensor, WithDType};

/// Reads of one site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteReads {
    /// Reads made.
    pub count: usize,
    /// Elements of the largest one.
    pub largest: usize,
}

/// What crossed between host and device during a scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferRecord {
    /// Device → host reads on any device (CPU included).
    pub host_reads: usize,
    /// Bytes of those reads.
    pub host_read_bytes: usize,
    /// Elements of the largest single read.
    pub largest_read: usize,
    /// Per read site: count and largest read.
    pub read_sites: BTreeMap<&'static str, SiteReads>,
    /// Host → device uploads on any device (CPU included).
    pub uploads: usize,
    /// Bytes of those uploads.
    pub upload_bytes: usize,
    /// Reads and uploads whose device is not the CPU (real transfers).
    pub transfers: usize,
    /// Bytes of the real transfers.
    pub transfer_bytes: usize,
}

impl TransferRecord {
    fn add_read(&mut self, site: &'static str, on_cpu: bool, elements: usize, bytes: usize) {
        self.host_reads += 1;
        self.host_read_bytes += bytes;
        self.largest_read = self.largest_read.max(elements);
        let s = self.read_sites.entry(site).or_default();
        s.count += 1;
        s.largest = s.largest.max(elements);
        if !on_cpu {
            self.transfers += 1;
            self.transfer_bytes += bytes;
        }
    }

    fn add_upload(&mut self, on_cpu: bool, bytes: usize) {
        self.uploads += 1;
        self.upload_bytes += bytes;
        if !on_cpu {
            self.transfers += 1;
            self.transfer_bytes += bytes;
        }
    }
}

thread_local! {
    /// Open scopes of this thread, innermost last; each event goes to all of them.
    static SCOPES: RefCell<Vec<TransferRecord>> = const { RefCell::new(Vec::new()) };
}

/// A recording scope on the current thread (see the module docs). Scopes nest: an inner
/// scope's events also count in the outer ones.
#[derive(Debug)]
#[must_use = "a scope records until `finish` is called"]
pub struct Recorder {
    depth: usize,
}

impl Recorder {
    /// Starts recording on this thread.
    pub fn start() -> Self {
        let depth = SCOPES.with(|s| {
            let mut s = s.borrow_mut();
            s.push(TransferRecord::default());
            s.len()
        });
        Self { depth }
    }

    /// Stops recording and returns what this scope saw (scopes opened inside it and not
    /// finished are closed too).
    pub fn finish(self) -> TransferRecord {
        let depth = self.depth;
        std::mem::forget(self);
        close(depth)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        close(self.depth);
    }
}

fn close(depth: usize) -> TransferRecord {
    SCOPES.with(|s| {
        let mut s = s.borrow_mut();
        let mut record = TransferRecord::default();
        while s.len() >= depth && depth > 0 {
            record = s.pop().unwrap_or_default();
        }
        record
    })
}

fn each_scope(f: impl Fn(&mut TransferRecord)) {
    SCOPES.with(|s| s.borrow_mut().iter_mut().for_each(&f));
}

/// Records a device → host read of `elements` values (`bytes` bytes) at `site` that did not go
/// through [`read`] (e.g. a data-dependent size an op must learn). Call it on every device:
/// on the CPU it marks where a GPU run synchronises.
pub fn note_read(site: &'static str, device: &Device, elements: usize, bytes: usize) {
    let on_cpu = device.is_cpu();
    each_scope(|r| r.add_read(site, on_cpu, elements, bytes));
}

/// Records a host → device upload of `bytes` bytes to `device` that did not go through
/// [`upload`] (e.g. the copy inside a kernel wrapper).
pub fn note_upload(device: &Device, bytes: usize) {
    let on_cpu = device.is_cpu();
    each_scope(|r| r.add_upload(on_cpu, bytes));
}

/// All values of `t` in row-major order, read to the host. `site` names the caller in the
/// record (e.g. `"nms: scores"`).
pub fn read<T: WithDType>(site: &'static str, t: &Tensor) -> Result<Vec<T>> {
    let values = t.flatten_all()?.to_vec1::<T>()?;
    note_read(
        site,
        t.device(),
        values.len(),
        values.len() * t.dtype().size_in_bytes(),
    );
    Ok(values)
}

/// The single value of a one-element tensor (any shape), read to the host.
pub fn read_scalar<T: WithDType>(site: &'static str, t: &Tensor) -> Result<T> {
    let n = t.elem_count();
    if n != 1 {
        candle_core::bail!(
            "{site}: expected one value, the tensor has {n} ({:?})",
            t.shape()
        );
    }
    Ok(read::<T>(site, t)?[0])
}

/// Rows of a `[R, C]` tensor read to the host.
pub fn read_rows<T: WithDType>(site: &'static str, t: &Tensor) -> Result<Vec<Vec<T>>> {
    let (_, c) = t.dims2()?;
    let values = read::<T>(site, t)?;
    Ok(values.chunks(c.max(1)).map(<[T]>::to_vec).collect())
}

/// A tensor of `shape` on `device` from host values (an image of 1 MiB or more through pinned
/// memory on CUDA, as [`to_device`]).
pub fn upload<T: WithDType, S: Into<Shape>>(
    data: Vec<T>,
    shape: S,
    device: &Device,
) -> Result<Tensor> {
    note_upload(device, data.len() * T::DTYPE.size_in_bytes());
    #[cfg(feature = "cuda")]
    if let Device::Cuda(dev) = device {
        // A host tensor first (no copy: it takes `data`), then the same choice as `to_device`.
        let host = Tensor::from_vec(data, shape, &Device::Cpu)?;
        return match pinned::applies(&host, dev) {
            true => pinned::upload(&host, dev),
            false => host.to_device(device),
        };
    }
    Tensor::from_vec(data, shape, device)
}

/// `t` moved to `device`, counted as an upload when it leaves the host. With the `cuda`
/// feature, a CPU f32 tensor of 1 MiB or more (an image batch) goes to a CUDA device through
/// pinned memory on a copy stream, overlapping the compute stream's queued work (see
/// `pinned.rs`); smaller ones through candle's upload.
pub fn to_device(t: &Tensor, device: &Device) -> Result<Tensor> {
    if t.device().is_cpu() {
        note_upload(device, t.elem_count() * t.dtype().size_in_bytes());
        #[cfg(feature = "cuda")]
        if let Device::Cuda(dev) = device {
            if pinned::applies(t, dev) {
                return pinned::upload(t, dev);
            }
        }
    } else if device.is_cpu() {
        note_read(
            "to_device: to host",
            t.device(),
            t.elem_count(),
            t.elem_count() * t.dtype().size_in_bytes(),
        );
    }
    t.to_device(device)
}

#[cfg(feature = "cuda")]
mod pinned;

#[cfg(test)]
mod tests;
