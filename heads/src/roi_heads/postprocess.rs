//! From box-head predictions to final detections (torchvision's `postprocess_detections`).

use super::{Detections, RoiHeads};
use crate::ops;
use candle_core::{DType, Result, Tensor, D};

impl RoiHeads {
    /// Per image: softmax class probabilities, every class's deltas decoded onto the proposal
    /// and clipped to the image; then, over all (proposal, foreground class) pairs, those
    /// with probability > `score_thresh` and sides >= `min_size`, NMS'd per class, best
    /// `detections_per_img` kept.
    ///
    /// # Shapes
    /// - `logits`: `[sum K_i, C]`, `deltas`: `[sum K_i, 4C]`, `proposals[i]`: `[K_i, 4]`.
    pub fn postprocess_detections(
        &self,
        logits: &Tensor,
        deltas: &Tensor,
        proposals: &[Tensor],
        image_sizes: &[(usize, usize)],
    ) -> Result<Vec<Detections>> {
        if proposals.len() != image_sizes.len() {
            candle_core::bail!(
                "RoiHeads: {} proposal sets for {} image sizes",
                proposals.len(),
                image_sizes.len()
            );
        }
        let (total, c) = logits.dims2()?;
        let counts = proposals
            .iter()
            .map(|p| p.dim(0))
            .collect::<Result<Vec<_>>>()?;
        if counts.iter().sum::<usize>() != total {
            candle_core::bail!("RoiHeads: {total} predictions for {counts:?} proposals");
        }
        let device = logits.device();
        let concat = Tensor::cat(proposals, 0)?;
        let boxes = self.box_coder.decode(deltas, &concat)?; // [sum K, C, 4]
        let scores = candle_nn::ops::softmax(logits, D::Minus1)?; // [sum K, C]

        let mut out = Vec::with_capacity(proposals.len());
        let mut offset = 0;
        for (&k, &image_size) in counts.iter().zip(image_sizes) {
            if k == 0 {
                // (candle 0.11 panics reading an empty view at the end of its storage)
                out.push(Detections {
                    boxes: Tensor::zeros((0, 4), DType::F32, device)?,
                    scores: Tensor::zeros(0, DType::F32, device)?,
                    labels: Tensor::zeros(0, DType::U32, device)?,
                });
                continue;
            }
            let boxes = boxes.narrow(0, offset, k)?; // [K, C, 4]
            let scores = scores.narrow(0, offset, k)?; // [K, C]
            offset += k;
            let boxes = ops::clip_boxes_to_image(&boxes.reshape((k * c, 4))?, image_size)?;
            // Drop class 0 (background); flatten (proposal, class) pairs row-major.
            let boxes = boxes
                .reshape((k, c, 4))?
                .narrow(1, 1, c - 1)?
                .reshape((k * (c - 1), 4))?;
            let score_values = scores
                .narrow(1, 1, c - 1)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let candidates: Vec<u32> = score_values
                .iter()
                .enumerate()
                .filter(|(_, &s)| s > self.config.score_thresh)
                .map(|(i, _)| i as u32)
                .collect();
            let boxes = boxes.index_select(&Tensor::new(candidates.as_slice(), device)?, 0)?;
            let keep = ops::remove_small_boxes(&boxes, self.config.min_size)?.to_vec1::<u32>()?;
            let candidates: Vec<u32> = keep.iter().map(|&j| candidates[j as usize]).collect();
            let boxes = boxes.index_select(&Tensor::new(keep.as_slice(), device)?, 0)?; // [M, 4]
            let kept_scores: Vec<f32> = candidates
                .iter()
                .map(|&j| score_values[j as usize])
                .collect();
            let labels: Vec<u32> = candidates.iter().map(|&j| j % (c as u32 - 1) + 1).collect();
            let scores_t = Tensor::new(kept_scores.as_slice(), device)?;
            let labels_t = Tensor::new(labels.as_slice(), device)?;

            let keep = ops::batched_nms(&boxes, &scores_t, &labels_t, self.config.nms_thresh)?;
            let n = keep.dim(0)?.min(self.config.detections_per_img);
            let keep = keep.narrow(0, 0, n)?;
            out.push(Detections {
                boxes: boxes.index_select(&keep, 0)?,
                scores: scores_t.index_select(&keep, 0)?,
                labels: labels_t.index_select(&keep, 0)?,
            });
        }
        Ok(out)
    }
}
