//! Loads the torchvision fixture written by `tests/fixtures/faster_rcnn/gen.py` (run it with
//! `/work/venv/bin/python tests/fixtures/faster_rcnn/gen.py` from the repository root).
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use heads::roi_heads::Target;
use heads::sampler::SampledIndices;
use std::collections::HashMap;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/faster_rcnn");

pub struct Fixture {
    pub tensors: HashMap<String, Tensor>,
    pub meta: serde_json::Value,
}

impl Fixture {
    pub fn load() -> Self {
        let tensors =
            candle_core::safetensors::load(format!("{DIR}/heads.safetensors"), &Device::Cpu)
                .expect("heads.safetensors (regenerate with gen.py)");
        let meta = std::fs::read_to_string(format!("{DIR}/heads.json")).expect("heads.json");
        Self {
            tensors,
            meta: serde_json::from_str(&meta).expect("heads.json is JSON"),
        }
    }

    pub fn get(&self, name: &str) -> Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
            .clone()
    }

    /// Weights (`rpn.*`, `roi_heads.*`) as a VarBuilder.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.tensors.clone(), DType::F32, &Device::Cpu)
    }

    pub fn usize(&self, key: &str) -> usize {
        self.meta[key]
            .as_u64()
            .unwrap_or_else(|| panic!("heads.json: {key}")) as usize
    }

    pub fn pair(v: &serde_json::Value) -> (usize, usize) {
        (
            v[0].as_u64().unwrap() as usize,
            v[1].as_u64().unwrap() as usize,
        )
    }

    pub fn padded_size(&self) -> (usize, usize) {
        Self::pair(&self.meta["padded_size"])
    }

    pub fn image_sizes(&self) -> Vec<(usize, usize)> {
        self.meta["image_sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(Self::pair)
            .collect()
    }

    pub fn num_images(&self) -> usize {
        self.image_sizes().len()
    }

    /// P2..P6, each `[B, C, H, W]`.
    pub fn features(&self) -> Vec<Tensor> {
        (0..5).map(|i| self.get(&format!("features.{i}"))).collect()
    }

    pub fn per_image(&self, prefix: &str) -> Vec<Tensor> {
        (0..self.num_images())
            .map(|i| self.get(&format!("{prefix}.{i}")))
            .collect()
    }

    pub fn targets(&self) -> Vec<Target> {
        (0..self.num_images())
            .map(|i| Target {
                boxes: self.get(&format!("train.gt_boxes.{i}")),
                labels: self.get(&format!("train.gt_labels.{i}")),
            })
            .collect()
    }

    /// torchvision's sampled indices per image, `stage` = `rpn` or `roi`.
    pub fn samples(&self, stage: &str) -> Vec<SampledIndices> {
        let idx = |name: String| -> Vec<u32> {
            let t = self.get(&name).to_dtype(DType::I64).unwrap();
            t.to_vec1::<i64>()
                .unwrap()
                .into_iter()
                .map(|v| v as u32)
                .collect()
        };
        (0..self.num_images())
            .map(|i| SampledIndices {
                positive: idx(format!("train.{stage}_samples.{i}.positive")),
                negative: idx(format!("train.{stage}_samples.{i}.negative")),
            })
            .collect()
    }

    pub fn loss(&self, name: &str) -> f64 {
        self.meta["losses"][name]
            .as_f64()
            .unwrap_or_else(|| panic!("loss {name}"))
    }
}

pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap()
}

/// Largest absolute difference between two `[N, 4]` box sets of equal size.
pub fn max_box_diff(a: &Tensor, b: &Tensor) -> f32 {
    rows(a)
        .iter()
        .zip(rows(b))
        .flat_map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}

pub fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-12)
}

pub fn scalar(t: &Tensor) -> f64 {
    f64::from(t.to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap())
}

/// Ranked boxes (proposals or detections) on the host.
pub struct Ranked {
    pub boxes: Vec<Vec<f32>>,
    pub scores: Vec<f32>,
    /// Class labels; all 0 for proposals.
    pub labels: Vec<i64>,
}

impl Ranked {
    pub fn new(boxes: &Tensor, scores: &Tensor, labels: Option<&Tensor>) -> Self {
        let scores = scores
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let labels = match labels {
            Some(l) => l.to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap(),
            None => vec![0; scores.len()],
        };
        Self {
            boxes: rows(boxes),
            scores,
            labels,
        }
    }
}

/// Pairs each reference row with one of ours, in order, allowing rows whose scores tie
/// (within `score_tol`) to come in either order: NMS breaks exact score ties by an
/// implementation-defined sort. A pair needs equal labels, boxes within `box_tol` and scores
/// within `score_tol`; panics when a reference row has no partner. Returns the largest box
/// and score differences.
pub fn match_ranked(
    what: &str,
    got: &Ranked,
    want: &Ranked,
    box_tol: f32,
    score_tol: f32,
) -> (f32, f32) {
    assert_eq!(got.scores.len(), want.scores.len(), "{what}: count");
    let box_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    let mut used = vec![false; got.scores.len()];
    let (mut max_box, mut max_score) = (0f32, 0f32);
    for i in 0..want.scores.len() {
        let close = |j: usize| {
            !used[j]
                && got.labels[j] == want.labels[i]
                && (got.scores[j] - want.scores[i]).abs() <= score_tol
                && box_diff(&got.boxes[j], &want.boxes[i]) <= box_tol
        };
        // in place, else among the (tied) neighbours
        let j = if close(i) {
            Some(i)
        } else {
            (0..got.scores.len()).find(|&j| close(j))
        };
        let j = j.unwrap_or_else(|| {
            panic!(
                "{what}: reference row {i} {:?} (label {}, score {}) has no match; ours at {i}: {:?} (label {}, score {})",
                want.boxes[i], want.labels[i], want.scores[i], got.boxes[i], got.labels[i], got.scores[i]
            )
        });
        used[j] = true;
        max_box = max_box.max(box_diff(&got.boxes[j], &want.boxes[i]));
        max_score = max_score.max((got.scores[j] - want.scores[i]).abs());
    }
    (max_box, max_score)
}
