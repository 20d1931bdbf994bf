//! Loading our CUDA kernels.
//!
//! The kernels (`heads/kernels/*.cu`) are compiled at run time with NVRTC (through cudarc,
//! which candle already links) rather than by nvcc in a build script: our crate then needs no
//! nvcc at build time, and the PTX comes from the NVRTC that ships with the machine's CUDA
//! runtime, so it never targets a newer PTX ISA than the driver accepts (PTX from a newer
//! nvcc is refused by an older driver). The cost is one compile per process and kernel file
//! (tens of milliseconds), cached below. FMA contraction is off so the GPU rounds like our
//! CPU code and torchvision's (NMS compares IoUs exactly).

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::cuda_backend::cudarc::driver::CudaFunction;
use candle_core::cuda_backend::cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use candle_core::cuda_backend::CudaDevice;
use candle_core::{Device, Result, Tensor};

static PTX: Mutex<Option<HashMap<&'static str, String>>> = Mutex::new(None);

/// PTX of `src` (module `module`), compiled by NVRTC once per process.
pub(crate) fn ptx(module: &'static str, src: &'static str) -> Result<String> {
    let mut cache = PTX
        .lock()
        .map_err(|_| candle_core::Error::msg("heads::ops: PTX cache poisoned"))?;
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(module) {
        return Ok(p.clone());
    }
    let opts = CompileOptions {
        fmad: Some(false),
        name: Some(format!("{module}.cu")),
        ..Default::default()
    };
    let ptx = compile_ptx_with_opts(src, opts)
        .map_err(|e| {
            candle_core::Error::msg(format!("heads::ops: NVRTC failed on {module}.cu: {e:?}"))
        })?
        .to_src();
    cache.insert(module, ptx.clone());
    Ok(ptx)
}

/// The kernel `func` of the module `module` (CUDA source `src`), loaded on `device`.
pub(crate) fn kernel(
    device: &CudaDevice,
    module: &'static str,
    src: &'static str,
    func: &str,
) -> Result<CudaFunction> {
    let ptx = ptx(module, src)?;
    Ok(device
        .get_or_load_custom_func(func, module, &ptx)?
        .into_cuda_function())
}

/// The CUDA device of a tensor (callers dispatch on the device first).
pub(crate) fn cuda_device(t: &Tensor) -> Result<CudaDevice> {
    match t.device() {
        Device::Cuda(d) => Ok(d.clone()),
        _ => Err(candle_core::Error::msg(
            "heads::ops: expected a CUDA tensor",
        )),
    }
}

#[cfg(test)]
mod tests;
