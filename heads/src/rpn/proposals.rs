//! From anchor predictions to proposals: per-level top-n, decode, clip, filter, per-level NMS.

use super::{Proposals, Rpn, RpnOutput};
use crate::ops;
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor};

impl Rpn {
    /// Proposals of each image (torchvision's `filter_proposals`): the `pre_nms_top_n`
    /// highest objectness logits of each level, decoded onto their anchors, clipped to the
    /// image, without boxes smaller than `min_size` or scoring below `score_thresh`, NMS'd
    /// within each level, then the best `post_nms_top_n` over all levels.
    ///
    /// Everything up to NMS stays on the device: top-n ([`ops::top_k`]), sigmoid, decode,
    /// clip and the size / score filter ([`ops::nonzero`]); NMS reads the surviving boxes.
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
        let (num_images, _) = out.objectness.dims2()?;
        if image_sizes.len() != num_images {
            candle_core::bail!(
                "Rpn: {} image sizes for a batch of {num_images}",
                image_sizes.len()
            );
        }
        let objectness = out.objectness.detach().to_dtype(DType::F32)?; // [B, A_total]
        let (index, level) =
            top_n_per_level(&objectness, &out.num_anchors_per_level, pre_nms_top_n)?;
        let mut boxes_out = Vec::with_capacity(num_images);
        let mut scores_out = Vec::with_capacity(num_images);
        for (i, &image_size) in image_sizes.iter().enumerate() {
            let idx = index.get(i)?; // [K]
            let anchors = out.anchors.index_select(&idx, 0)?; // [K, 4]
            let deltas = out.deltas.get(i)?.detach().index_select(&idx, 0)?; // [K, 4]
            let boxes = self.box_coder.decode(&deltas, &anchors)?.squeeze(1)?; // [K, 4]
            let boxes = ops::clip_boxes_to_image(&boxes, image_size)?;
            // sigmoid in f32 as torch: 1 / (1 + exp(-x))
            let logits = objectness.get(i)?.index_select(&idx, 0)?; // [K]
            let scores = (logits.neg()?.exp()? + 1.0)?.recip()?; // [K]

            let large = ops::large_boxes_mask(&boxes, self.config.min_size)?; // [K]
            let confident =
                ops::compare_scalar(&scores, CmpOp::Ge, self.config.score_thresh as f64)?; // [K]
            let keep = ops::nonzero(&(large * confident)?)?; // [K'], ascending
            let boxes = boxes.index_select(&keep, 0)?; // [K', 4]
            let scores = scores.index_select(&keep, 0)?; // [K']
            let level = level.get(i)?.index_select(&keep, 0)?; // [K']

            let keep = ops::batched_nms(&boxes, &scores, &level, self.config.nms_thresh)?;
            let n = keep.dim(0)?.min(post_nms_top_n);
            let keep = keep.narrow(0, 0, n)?;
            boxes_out.push(boxes.index_select(&keep, 0)?); // [K_i, 4]
            scores_out.push(scores.index_select(&keep, 0)?); // [K_i]
        }
        Ok(Proposals {
            boxes: boxes_out,
            scores: scores_out,
        })
    }
}

/// Per image, indices (into its anchors) of the `n` largest logits of every level, each
/// level's sorted by decreasing logit (ties: lower index first; NaN last), and the level of
/// each.
///
/// # Shapes
/// `logits [B, A_total]` f32 → (U32 `[B, K]`, U32 `[B, K]`), `K = sum_l min(n, A_l)`
fn top_n_per_level(logits: &Tensor, per_level: &[usize], n: usize) -> Result<(Tensor, Tensor)> {
    let (b, _) = logits.dims2()?;
    let device = logits.device();
    let mut index = Vec::with_capacity(per_level.len());
    let mut level = Vec::with_capacity(per_level.len());
    let mut offset = 0;
    for (l, &count) in per_level.iter().enumerate() {
        let k = n.min(count);
        if k > 0 {
            let top = ops::top_k(&logits.narrow(1, offset, count)?, k)?; // [B, k]
            index.push(top.broadcast_add(&Tensor::full(offset as u32, (), device)?)?);
            level.push(Tensor::full(l as u32, (b, k), device)?);
        }
        offset += count;
    }
    if index.is_empty() {
        let empty = Tensor::zeros((b, 0), DType::U32, device)?;
        return Ok((empty.clone(), empty));
    }
    Ok((Tensor::cat(&index, 1)?, Tensor::cat(&level, 1)?))
}

#[cfg(test)]
mod tests;
