//! From anchor predictions to proposals: per-level top-n, decode, clip, filter, per-level NMS.

use super::{Proposals, Rpn, RpnOutput};
use crate::ops;
use candle_core::{DType, Result, Tensor};

impl Rpn {
    /// Proposals of each image (torchvision's `filter_proposals`): the `pre_nms_top_n`
    /// highest objectness logits of each level, decoded onto their anchors, clipped to the
    /// image, without boxes smaller than `min_size` or scoring below `score_thresh`, NMS'd
    /// within each level, then the best `post_nms_top_n` over all levels.
    ///
    /// Top-n runs on the host (candle has no topk): one copy of `[B, A_total]` logits.
    ///
    /// # Shapes
    /// - returns per image `boxes [K_i, 4]`, `scores [K_i]` (sigmoid probabilities).
    pub fn filter_proposals(
        &self,
        out: &RpnOutput,
        image_sizes: &[(usize, usize)],
        pre_nms_top_n: usize,
        post_nms_top_n: usize,
    ) -> Result<Proposals> {
        let (num_images, total) = out.objectness.dims2()?;
        if image_sizes.len() != num_images {
            candle_core::bail!(
                "Rpn: {} image sizes for a batch of {num_images}",
                image_sizes.len()
            );
        }
        let logits = out
            .objectness
            .detach()
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        let device = out.objectness.device();
        let mut boxes_out = Vec::with_capacity(num_images);
        let mut scores_out = Vec::with_capacity(num_images);
        for (i, (logits, &image_size)) in logits.iter().zip(image_sizes).enumerate() {
            let (index, level) = top_n_per_level(logits, &out.num_anchors_per_level, pre_nms_top_n);
            debug_assert!(index.iter().all(|&j| (j as usize) < total));
            let idx = Tensor::new(index.as_slice(), device)?;
            let anchors = out.anchors.index_select(&idx, 0)?; // [K, 4]
            let deltas = out.deltas.get(i)?.detach().index_select(&idx, 0)?; // [K, 4]
            let boxes = self.box_coder.decode(&deltas, &anchors)?.squeeze(1)?; // [K, 4]
            let boxes = ops::clip_boxes_to_image(&boxes, image_size)?;
            // sigmoid on the host, in f32 like torch
            let scores: Vec<f32> = index
                .iter()
                .map(|&j| 1.0 / (1.0 + (-logits[j as usize]).exp()))
                .collect();

            let keep = ops::remove_small_boxes(&boxes, self.config.min_size)?;
            let keep: Vec<u32> = keep
                .to_vec1::<u32>()?
                .into_iter()
                .filter(|&k| scores[k as usize] >= self.config.score_thresh)
                .collect();
            let keep_t = Tensor::new(keep.as_slice(), device)?;
            let boxes = boxes.index_select(&keep_t, 0)?; // [K', 4]
            let scores: Vec<f32> = keep.iter().map(|&k| scores[k as usize]).collect();
            let level: Vec<u32> = keep.iter().map(|&k| level[k as usize]).collect();
            let scores_t = Tensor::new(scores.as_slice(), device)?;
            let level_t = Tensor::new(level.as_slice(), device)?;

            let keep = ops::batched_nms(&boxes, &scores_t, &level_t, self.config.nms_thresh)?;
            let n = keep.dim(0)?.min(post_nms_top_n);
            let keep = keep.narrow(0, 0, n)?;
            boxes_out.push(boxes.index_select(&keep, 0)?); // [K_i, 4]
            scores_out.push(scores_t.index_select(&keep, 0)?); // [K_i]
        }
        Ok(Proposals {
            boxes: boxes_out,
            scores: scores_out,
        })
    }
}

/// Indices (into the image's anchors) of the `n` largest logits of every level, each level's
/// sorted by decreasing logit, and the level of each.
fn top_n_per_level(logits: &[f32], per_level: &[usize], n: usize) -> (Vec<u32>, Vec<u32>) {
    let mut index = Vec::new();
    let mut level = Vec::new();
    let mut offset = 0;
    for (l, &count) in per_level.iter().enumerate() {
        let slice = &logits[offset..offset + count];
        let mut order: Vec<u32> = (0..count as u32).collect();
        // Descending; NaN last. Ties keep the lower index first.
        let cmp = |a: &u32, b: &u32| {
            let (x, y) = (slice[*a as usize], slice[*b as usize]);
            y.partial_cmp(&x)
                .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
                .then(a.cmp(b))
        };
        let k = n.min(count);
        if k < count && k > 0 {
            order.select_nth_unstable_by(k - 1, cmp);
            order.truncate(k);
        }
        order.truncate(k);
        order.sort_unstable_by(cmp);
        index.extend(order.iter().map(|&j| j + offset as u32));
        level.extend(std::iter::repeat_n(l as u32, k));
        offset += count;
    }
    (index, level)
}

#[cfg(test)]
mod tests;
