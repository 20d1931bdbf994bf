//! Process-wide settings the `detect` binary makes before it starts any thread; the
//! benchmarks call the same function, so that they time what users run.

/// Sets what [`candle_threads`] and [`keep_freed_memory`] describe. Call first thing in
/// `main`, before any thread starts.
pub fn configure() {
    candle_threads();
    keep_freed_memory();
}

/// candle's CPU element-wise ops fan out to a spinning thread pool; on small tensors, and
/// whenever the cores are shared, the spinning costs more than it saves (the shapes quick
/// start trains 3x faster with one such thread). Matrix products and our convolution kernels
/// keep using every core (RAYON_NUM_THREADS). `CANDLE_NUM_THREADS` overrides it.
fn candle_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// glibc serves allocations over 32 MiB (most activations and gradients of an 800-pixel
/// image) with a fresh `mmap` and unmaps them when freed, so every step faults in and zeroes
/// all of its large tensors again: page faults were 14% of an X101 training step's CPU time.
/// Served from the heap and never trimmed, freed memory is reused by the next step instead.
/// Measured on an X101-FPN training step at 800x1333, batch 2: about 5% less time, 5% more
/// peak RSS (a multi-scale run's RSS is in the commit that added this). glibc only; a
/// `MALLOC_*` or `GLIBC_TUNABLES` setting in the environment is left to win.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::vars_os().any(|(k, _)| {
            let k = k.to_string_lossy();
            k.starts_with("MALLOC_") || k == "GLIBC_TUNABLES"
        });
        if !user_set {
            // SAFETY: mallopt only changes glibc's allocation thresholds; it is called before
            // any other thread exists.
            unsafe {
                libc::mallopt(libc::M_MMAP_MAX, 0);
                // -1: never trim (mallopt(3)).
                libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
            }
        }
    }
}
