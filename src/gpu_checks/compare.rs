//! One check's outcome, the error measures of the parity definition, and seeded test data.
use candle_core::{DType, Device, Result, Tensor};

/// One CUDA-vs-CPU comparison: what was compared, whether it passed, the measured error and
/// the limit, as `detect parity` and `detect doctor` print them.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// The measured error (for doctor's "worst error"); 0 for exact comparisons that match.
    pub error: f64,
    pub measured: String,
    pub limit: String,
}

impl Check {
    /// Passes when `error <= limit`; `what` names the measure (e.g. "max|Δ|").
    pub fn within(name: impl Into<String>, what: &str, error: f64, limit: f64) -> Self {
        Self {
            name: name.into(),
            passed: error <= limit, // NaN fails
            error,
            measured: format!("{what} {error:.2e}"),
            limit: format!("<= {limit:.0e}"),
        }
    }

    /// Passes when `equal`; `detail` says what differed (or what matched).
    pub fn exact(name: impl Into<String>, equal: bool, detail: String) -> Self {
        Self {
            name: name.into(),
            passed: equal,
            error: if equal { 0.0 } else { f64::INFINITY },
            measured: detail,
            limit: "identical".into(),
        }
    }

    /// A check that could not run (an error on either device) fails with the error's text.
    pub fn failed(name: impl Into<String>, err: &dyn std::fmt::Display) -> Self {
        let text = err.to_string().replace(['\n', '\t'], " ");
        Self {
            name: name.into(),
            passed: false,
            error: f64::INFINITY,
            measured: format!("error: {text}"),
            limit: "runs".into(),
        }
    }

    /// `name\tPASS|FAIL\tmeasured\tlimit` (the TSV `scripts/gpu-run.sh` reads).
    pub fn tsv(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\t'], " ");
        format!(
            "{}\t{}\t{}\t{}",
            clean(&self.name),
            if self.passed { "PASS" } else { "FAIL" },
            clean(&self.measured),
            clean(&self.limit)
        )
    }
}

/// A tensor's values as f64 on the host.
pub fn host(t: &Tensor) -> Result<Vec<f64>> {
    t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1()
}

/// `max|a - b|` over same-shaped tensors on any devices; a NaN on one side only is infinite.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        candle_core::bail!("shapes differ: {:?} vs {:?}", a.dims(), b.dims())
    }
    let (a, b) = (host(a)?, host(b)?);
    Ok(a.iter().zip(&b).fold(0.0, |m, (x, y)| {
        let d = if x.is_nan() && y.is_nan() {
            0.0
        } else if x.is_nan() || y.is_nan() {
            f64::INFINITY
        } else {
            (x - y).abs()
        };
        m.max(d)
    }))
}

/// `max|a - b| / max|reference|` (0 when both are all zero).
pub fn max_rel_diff(a: &Tensor, reference: &Tensor) -> Result<f64> {
    let d = max_abs_diff(a, reference)?;
    let scale = host(reference)?.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    Ok(if d == 0.0 { 0.0 } else { d / scale })
}

/// A seeded xorshift generator: the same data on every machine, no extra dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// `n` values uniform in [lo, hi).
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.uniform()).collect()
    }

    /// A CPU tensor of `shape` uniform in [lo, hi).
    pub fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Result<Tensor> {
        let n = shape.iter().product();
        Tensor::from_vec(self.vec(n, lo, hi), shape, &Device::Cpu)
    }
}
