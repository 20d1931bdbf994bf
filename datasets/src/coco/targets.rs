//! Training targets from COCO annotations: clipped xyxy boxes and contiguous labels.
//!
//! Follows the data issue's conventions (detectron2-like): crowd regions (`iscrowd=1`) are
//! excluded from training targets (the evaluator keeps them as "ignore"); a box whose width or
//! height is below one pixel after clipping to the image is dropped and counted; images left
//! without any box can be filtered out of training.
use super::{CategoryMap, CocoDataset, ImageId};

/// Minimum width and height, in pixels after clipping, of a kept training box.
pub const MIN_BOX_SIDE: f64 = 1.0;

/// Options for [`CocoDataset::training_targets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetOptions {
    /// Leave out images that have no box left (torchvision's and detectron2's default for
    /// training: `filter_empty`).
    pub filter_empty: bool,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions { filter_empty: true }
    }
}

/// The targets of one image, in original image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTargets {
    pub image_id: ImageId,
    /// Position of the image in [`CocoDataset::images`].
    pub image_index: usize,
    /// `[x1, y1, x2, y2]`, continuous coordinates (no `+1`), clipped to `[0, width] x [0, height]`.
    pub boxes_xyxy: Vec<[f32; 4]>,
    /// Contiguous labels 1..K (see [`CategoryMap`]), one per box.
    pub labels: Vec<u32>,
}

/// The targets of a whole file and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingTargets {
    /// One entry per kept image, in file order.
    pub images: Vec<ImageTargets>,
    /// Crowd regions (`iscrowd=1`) left out of the targets.
    pub crowd_excluded: usize,
    /// Boxes dropped because a side was below [`MIN_BOX_SIDE`] after clipping.
    pub small_dropped: usize,
    /// Boxes dropped because `map` has no label for their category (only with a map that was
    /// not built from this file).
    pub unmapped_dropped: usize,
    /// Images left out because no box remained (only with `filter_empty`).
    pub empty_images_filtered: usize,
}

/// Converts COCO `[x, y, w, h]` to `[x1, y1, x2, y2]` clipped to a `width x height` image.
pub fn bbox_xywh_to_xyxy_clipped(bbox: [f64; 4], width: u32, height: u32) -> [f64; 4] {
    let (w, h) = (width as f64, height as f64);
    let [x, y, bw, bh] = bbox;
    [
        x.clamp(0.0, w),
        y.clamp(0.0, h),
        (x + bw).clamp(0.0, w),
        (y + bh).clamp(0.0, h),
    ]
}

impl CocoDataset {
    /// Builds training targets for every image (in file order), labels through `map`.
    ///
    pub fn training_targets(&self, map: &CategoryMap, options: TargetOptions) -> TrainingTargets {
        let mut out = TrainingTargets {
            images: Vec::with_capacity(self.images.len()),
            crowd_excluded: 0,
            small_dropped: 0,
            unmapped_dropped: 0,
            empty_images_filtered: 0,
        };
        for (image_index, anns) in self.annotations_per_image().into_iter().enumerate() {
            let image = &self.images[image_index];
            let mut targets = ImageTargets {
                image_id: image.id,
                image_index,
                boxes_xyxy: Vec::with_capacity(anns.len()),
                labels: Vec::with_capacity(anns.len()),
            };
            for a in anns {
                let ann = &self.annotations[a];
                if ann.iscrowd {
                    out.crowd_excluded += 1;
                    continue;
                }
                let b = bbox_xywh_to_xyxy_clipped(ann.bbox, image.width, image.height);
                let Some(label) = map.label(ann.category_id) else {
                    out.unmapped_dropped += 1;
                    continue;
                };
                if b[2] - b[0] < MIN_BOX_SIDE || b[3] - b[1] < MIN_BOX_SIDE {
                    out.small_dropped += 1;
                    continue;
                }
                targets.boxes_xyxy.push(b.map(|v| v as f32));
                targets.labels.push(label);
            }
            if options.filter_empty && targets.labels.is_empty() {
                out.empty_images_filtered += 1;
            } else {
                out.images.push(targets);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
