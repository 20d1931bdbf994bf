//! What the loader yields: one batch of images with their targets.
use candle_core::{Device, Tensor};

use crate::coco::ImageId;

/// The targets of one image, in resized pixels.
#[derive(Debug, Clone)]
pub struct Targets {
    /// `[N, 4]` f32 xyxy boxes.
    pub boxes: Tensor,
    /// `[N]` u32 contiguous labels 1..K.
    pub labels: Tensor,
}

/// One batch, ready for the model.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, 3, H, W]` f32, normalised, zero-padded; `H`, `W` multiples of `size_divisible`.
    pub images: Tensor,
    /// Per image `(height, width)` after resizing (the valid region of `images`).
    pub image_sizes: Vec<(usize, usize)>,
    /// Per image `(height, width)` as decoded.
    pub original_sizes: Vec<(usize, usize)>,
    /// COCO image ids.
    pub image_ids: Vec<ImageId>,
    /// Per image boxes (resized pixels) and labels.
    pub targets: Vec<Targets>,
}

impl Batch {
    /// The batch with its tensors on `device` (the loader builds them on the CPU).
    pub fn to_device(&self, device: &Device) -> candle_core::Result<Batch> {
        let targets = self
            .targets
            .iter()
            .map(|t| {
                Ok(Targets {
                    boxes: t.boxes.to_device(device)?,
                    labels: t.labels.to_device(device)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Batch {
            images: self.images.to_device(device)?,
            image_sizes: self.image_sizes.clone(),
            original_sizes: self.original_sizes.clone(),
            image_ids: self.image_ids.clone(),
            targets,
        })
    }
}
