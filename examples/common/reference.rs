//! Shared by the benchmark examples: the reference side (torch/torchvision scripts in
//! `scripts/`), interleaved timing, ratios and peak memory.
//!
//! Protocol (issue 13): ours and the reference are timed in the same run, alternately
//! (ours, reference, ours, reference, ...), so that a change in machine load biases neither
//! side; the report is the median of each side, the median of the per-pair ratios
//! ours/reference and their min-max. The reference runs as a persistent child process
//! (`--serve`, scripts/bench_serve.py): after building its model and one warm-up it prints one
//! JSON line, then times one repetition per line on its stdin (`run`, or the name of one of its
//! steps) and answers `{"seconds": s}`.
//! Peak memory is the max RSS of a fresh child process per side (`wait4`'s rusage).
//! Each example uses a part of it, so unused items are expected here.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The middle value of `xs` (the upper middle for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The process settings the `detect` binary makes for itself (`detect::process::configure`:
/// candle's element-wise pool at one thread, freed memory kept for reuse). Call first in
/// `main`.
pub fn detect_env() {
    detect::process::configure();
}

/// Threads of our matrix products and conv kernels (rayon's pool, `RAYON_NUM_THREADS`); the
/// reference is given the same count.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// The interpreter with torch and torchvision as a user's machine has it: `$DETECT_PYTHON`,
/// else `python3`.
pub fn python() -> String {
    std::env::var("DETECT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `scripts/<script>` of this checkout, or of `$DETECT_SCRIPTS` (a folder) when set: a binary
/// built here and run elsewhere (the GPU machine's copy of the tree) finds the scripts there.
fn script_path(script: &str) -> String {
    match std::env::var("DETECT_SCRIPTS") {
        Ok(dir) => format!("{dir}/{script}"),
        Err(_) => format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")),
    }
}

/// Runs `scripts/<script>` with `args` and returns its JSON output.
pub fn run_script(script: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let python = python();
    let path = script_path(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {python} (set DETECT_PYTHON): {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{python} {path} failed (set DETECT_PYTHON to a python with torchvision): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The usual arguments of the timing scripts.
pub fn script_args(name: &str, h: usize, w: usize, iters: usize, threads: usize) -> Vec<String> {
    [
        "--backbone",
        name,
        "--height",
        &h.to_string(),
        "--width",
        &w.to_string(),
        "--iters",
        &iters.to_string(),
        "--threads",
        &threads.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A reference script running in `--serve` mode.
pub struct Reference {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// What the script printed once ready (versions, thread count, detections...).
    pub info: serde_json::Value,
}

impl Reference {
    /// Starts `scripts/<script> <args> --serve` and waits until it has built its model and
    /// run its warm-up.
    pub fn start(script: &str, args: &[String]) -> anyhow::Result<Self> {
        let python = python();
        let path = script_path(script);
        let mut child = Command::new(&python)
            .arg(&path)
            .args(args)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run {python} (set DETECT_PYTHON): {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut reference = Self {
            child,
            stdin,
            stdout,
            info: serde_json::Value::Null,
        };
        reference.info = reference.read_line().map_err(|e| {
            anyhow::anyhow!("{python} {path} --serve did not start (set DETECT_PYTHON to a python with torchvision): {e}")
        })?;
        Ok(reference)
    }

    fn read_line(&mut self) -> anyhow::Result<serde_json::Value> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line)?;
        anyhow::ensure!(n > 0, "the reference process ended (see its stderr above)");
        Ok(serde_json::from_str(&line)?)
    }

    /// Seconds of one timed repetition of the reference's step `name`.
    pub fn time(&mut self, name: &str) -> anyhow::Result<f64> {
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{name}")?;
        stdin.flush()?;
        let answer = self.read_line()?;
        answer["seconds"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("no `seconds` in {answer}"))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the script leaves its loop
        let _ = self.child.wait();
    }
}

/// Seconds of both sides, pair by pair.
pub struct Pairs {
    pub ours: Vec<f64>,
    pub reference: Vec<f64>,
}

/// `pairs` rounds of (ours, reference), alternating which side goes first each round.
pub fn interleave(
    pairs: usize,
    ours: impl FnMut() -> anyhow::Result<f64>,
    reference: &mut Reference,
) -> anyhow::Result<Pairs> {
    interleave_step(pairs, "run", ours, reference)
}

/// [`interleave`] against the reference's step `step`.
pub fn interleave_step(
    pairs: usize,
    step: &str,
    mut ours: impl FnMut() -> anyhow::Result<f64>,
    reference: &mut Reference,
) -> anyhow::Result<Pairs> {
    let mut out = Pairs {
        ours: Vec::new(),
        reference: Vec::new(),
    };
    for round in 0..pairs {
        if round % 2 == 0 {
            out.ours.push(ours()?);
            out.reference.push(reference.time(step)?);
        } else {
            out.reference.push(reference.time(step)?);
            out.ours.push(ours()?);
        }
    }
    Ok(out)
}

impl Pairs {
    /// Per-pair ratios ours / reference.
    pub fn ratios(&self) -> Vec<f64> {
        self.ours
            .iter()
            .zip(&self.reference)
            .map(|(o, r)| o / r)
            .collect()
    }

    /// `ours 1.234 s | reference 2.345 s | ratio 0.53x (per pair 0.50-0.58, 5 pairs)`.
    pub fn summary(&self, reference_name: &str) -> String {
        let ratios = self.ratios();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        format!(
            "ours {:.3} s | {reference_name} {:.3} s | ratio ours/{reference_name} {:.2}x (per pair {lo:.2}-{hi:.2}, {} pairs, medians)",
            median(self.ours.clone()),
            median(self.reference.clone()),
            median(ratios.clone()),
            ratios.len()
        )
    }
}

/// The 1-minute load average, for the report (benchmarks on a busy machine are noisy).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `command` to completion and returns its peak resident set size in bytes (the child's
/// own `ru_maxrss`, from `wait4`). Fails if the command fails.
pub fn peak_rss(mut command: Command) -> anyhow::Result<u64> {
    let shown = format!("{command:?}");
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {shown}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child `pid`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for (the Child is forgotten below, so std
    // never waits for it a second time); the pointers are to live locals.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    anyhow::ensure!(got == pid, "wait4 on {shown} failed");
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{shown} failed (status {status})"
    );
    Ok(usage.ru_maxrss as u64 * 1024) // Linux: kilobytes
}

/// Peak RSS in bytes of `(ours, reference)`, each as a fresh child process. Call it first in
/// `main`, while this process is small: Linux carries a process's RSS high-water mark into
/// a forked child and across `exec`, so a child of a large parent reports at least the
/// parent's peak (seen: both sides read 17.18 GB after a training benchmark). Ours is this
/// example re-run with `our_args` and `DETECT_BENCH_CHILD=1` (which makes it build its model and
/// run its own side once after a warm-up, see [`is_child`]); the reference is
/// `scripts/<script> <script_args>` run standalone. `None` in that child itself.
pub fn peak_rss_pair(
    our_args: &[String],
    script: &str,
    script_args: &[String],
) -> anyhow::Result<Option<(u64, u64)>> {
    if is_child() {
        return Ok(None);
    }
    let mut ours = Command::new(std::env::current_exe()?);
    ours.args(our_args).env("DETECT_BENCH_CHILD", "1");
    let ours = peak_rss(ours)?;
    let mut reference = Command::new(python());
    reference.arg(script_path(script)).args(script_args);
    Ok(Some((ours, peak_rss(reference)?)))
}

/// `peak RSS (...): ours 1.23 GB | torchvision 2.34 GB | ratio 0.53x`.
pub fn rss_summary(what: &str, (ours, reference): (u64, u64)) -> String {
    format!(
        "peak RSS ({what}): ours {} | torchvision {} | ratio {:.2}x",
        gigabytes(ours),
        gigabytes(reference),
        ours as f64 / reference as f64
    )
}

/// True in the child that [`peak_rss_pair`] starts.
pub fn is_child() -> bool {
    std::env::var_os("DETECT_BENCH_CHILD").is_some()
}

/// `1.23 GB`.
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}
