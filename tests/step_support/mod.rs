//! A synthetic training batch for step-level tests (`tests/step_transfers.rs`,
//! `tests/mixed_precision.rs`): `images` noise images of 160x160, each with the same two
//! ground-truth boxes (labels 1 and 3).
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use datasets::loader::{Batch, Targets};
use heads::roi_heads::Target;

/// The batch (fresh noise each call).
pub fn batch(images: usize) -> Batch {
    let dev = Device::Cpu;
    let boxes = [[10f32, 20., 60., 80.], [90., 40., 150., 120.]];
    Batch {
        images: Tensor::randn(0f32, 1.0, (images, 3, 160, 160), &dev).unwrap(),
        image_sizes: vec![(160, 160); images],
        original_sizes: vec![(160, 160); images],
        image_ids: (1..=images as u64).collect(),
        targets: (0..images)
            .map(|_| Targets {
                boxes: Tensor::new(&boxes, &dev).unwrap(),
                labels: Tensor::new(&[1u32, 3], &dev).unwrap(),
            })
            .collect(),
    }
}

/// The batch's ground truth as the model's `losses` takes it.
pub fn targets(batch: &Batch) -> Vec<Target> {
    batch
        .targets
        .iter()
        .map(|t| Target {
            boxes: t.boxes.clone(),
            labels: t.labels.clone(),
        })
        .collect()
}
