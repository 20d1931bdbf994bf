//! Shared helpers of the `ops_*` tests: fixtures written by `tests/fixtures/ops/gen.py`, the
//! devices every test body runs on, and comparisons.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

/// A fixture of `tests/fixtures/ops/` (regenerate: `python heads/tests/fixtures/ops/gen.py`).
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/ops/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// Floats of a fixture list; non-finite values are written as strings ("nan", "inf").
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| match x {
            Value::String(s) => s.parse::<f32>().expect("float string"),
            x => x.as_f64().expect("number") as f32,
        })
        .collect()
}

pub fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

/// A `{"shape": [...], "data": [...]}` fixture tensor as f32 on `device`.
pub fn tensor(v: &Value, device: &Device) -> Tensor {
    let shape: Vec<usize> = ints(&v["shape"]).into_iter().map(|d| d as usize).collect();
    Tensor::from_vec(floats(&v["data"]), shape, device).expect("fixture tensor")
}

/// CPU always; the first CUDA device when built with `cuda` and one is present.
pub fn devices() -> Vec<Device> {
    let mut devices = vec![Device::Cpu];
    if cfg!(feature = "cuda") {
        match Device::new_cuda(0) {
            Ok(d) => devices.push(d),
            Err(e) => eprintln!("cuda: skipped: no GPU ({e})"),
        }
    }
    devices
}

pub fn to_f32(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

pub fn to_u32(t: &Tensor) -> Vec<u32> {
    assert_eq!(t.dtype(), DType::U32);
    t.to_vec1().unwrap()
}

/// Largest |a - b|; NaN in either counts as infinitely far unless both are NaN.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x.is_nan() && y.is_nan() {
                0.0
            } else if x.is_nan() || y.is_nan() {
                f32::INFINITY
            } else {
                (x - y).abs()
            }
        })
        .fold(0.0, f32::max)
}

/// A tiny deterministic generator (xorshift), so references need no extra dependency.
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
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }
}
