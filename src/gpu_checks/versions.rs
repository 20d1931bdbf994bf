//! What `detect doctor` reports about the machine: GPU, driver, and the CUDA, cuDNN, NVRTC
//! and NCCL versions found at run time (each line says "not found" and why when it fails).

/// `(label, value)` lines, in print order.
pub fn report() -> Vec<(&'static str, String)> {
    let mut out = vec![("driver", driver_version())];
    cuda_lines(&mut out);
    out
}

/// The kernel driver's version, from `/proc/driver/nvidia/version` (Linux).
fn driver_version() -> String {
    match std::fs::read_to_string("/proc/driver/nvidia/version") {
        Ok(text) => text
            .lines()
            .next()
            .and_then(|l| {
                l.split_whitespace().find(|w| {
                    w.chars().filter(|c| *c == '.').count() >= 1
                        && w.chars().next().is_some_and(|c| c.is_ascii_digit())
                })
            })
            .map(str::to_string)
            .unwrap_or_else(|| "unknown (unexpected /proc/driver/nvidia/version)".into()),
        Err(_) => "not found (no /proc/driver/nvidia/version: no NVIDIA kernel driver)".into(),
    }
}

/// `91301` -> `9.13.1` (cuDNN 9 and NCCL >= 2.9 encode major * 10000 + minor * 100 + patch).
pub fn dotted(code: usize) -> String {
    format!("{}.{}.{}", code / 10000, code / 100 % 100, code % 100)
}

#[cfg(not(feature = "cuda"))]
fn cuda_lines(out: &mut Vec<(&'static str, String)>) {
    out.push((
        "CUDA",
        "not in this build (built without `--features cuda`)".into(),
    ));
}

#[cfg(feature = "cuda")]
fn cuda_lines(out: &mut Vec<(&'static str, String)>) {
    use candle_core::cuda_backend::cudarc::{cudnn, driver, nvrtc};
    let mut v = 0i32;
    // Safety: plain FFI calls writing into the given integers.
    let cuda = match unsafe { driver::sys::cuDriverGetVersion(&mut v) } {
        driver::sys::CUresult::CUDA_SUCCESS => format!(
            "{}.{} (the newest the driver supports)",
            v / 1000,
            v % 1000 / 10
        ),
        e => format!("unknown ({e:?})"),
    };
    out.push(("CUDA driver API", cuda));
    out.push((
        "built for",
        format!(
            "CUDA {} (CUDARC_CUDA_VERSION), compute capability {} (CUDA_COMPUTE_CAP)",
            option_env!("CUDARC_CUDA_VERSION").unwrap_or("?"),
            option_env!("CUDA_COMPUTE_CAP").unwrap_or("?")
        ),
    ));
    out.push(("cuDNN", dotted(cudnn::result::get_version())));
    let (mut major, mut minor) = (0i32, 0i32);
    let nvrtc = match unsafe { nvrtc::sys::nvrtcVersion(&mut major, &mut minor) } {
        nvrtc::sys::nvrtcResult::NVRTC_SUCCESS => format!("{major}.{minor}"),
        e => format!("unknown ({e:?})"),
    };
    out.push(("NVRTC", nvrtc));
    out.push(("NCCL", nccl_version()));
}

/// NCCL is not linked (training is single-GPU); look for the library the way a multi-GPU
/// build would load it, and ask it its version.
#[cfg(feature = "cuda")]
fn nccl_version() -> String {
    // Safety: dlopen/dlsym with NUL-terminated names; the symbol has NCCL's documented
    // signature `ncclResult_t ncclGetVersion(int *version)`.
    unsafe {
        let lib = libc::dlopen(c"libnccl.so.2".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return "not found (libnccl.so.2 not on the library path; the nvidia-nccl-cu13 wheel has it)".into();
        }
        let sym = libc::dlsym(lib, c"ncclGetVersion".as_ptr());
        if sym.is_null() {
            return "found libnccl.so.2, but it has no ncclGetVersion".into();
        }
        let get: extern "C" fn(*mut i32) -> i32 = std::mem::transmute(sym);
        let mut v = 0i32;
        match get(&mut v) {
            0 => dotted(v as usize),
            e => format!("libnccl.so.2 found, ncclGetVersion failed ({e})"),
        }
    }
}

/// The GPU behind `device`: name, compute capability, memory (free / total).
#[cfg(feature = "cuda")]
pub fn gpu(device: &candle_core::Device) -> String {
    let candle_core::Device::Cuda(d) = device else {
        return "not a CUDA device".into();
    };
    let stream = d.cuda_stream();
    let ctx = stream.context();
    let name = ctx.name().unwrap_or_else(|e| format!("unknown ({e})"));
    let cc = ctx
        .compute_capability()
        .map(|(a, b)| format!("{a}.{b}"))
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let mem = match ctx.mem_get_info() {
        Ok((free, total)) => format!(
            "{:.1} GiB free of {:.1} GiB",
            free as f64 / 1073741824.0,
            total as f64 / 1073741824.0
        ),
        Err(e) => format!("memory unknown ({e})"),
    };
    format!("{name}, compute capability {cc}, {mem}")
}

/// Without CUDA there is no GPU to describe.
#[cfg(not(feature = "cuda"))]
pub fn gpu(_device: &candle_core::Device) -> String {
    "not in this build".into()
}
