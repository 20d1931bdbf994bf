//! From box-head predictions to final detections (torchvision's `postprocess_detections`).

use super::{Detections, RoiHeads};
use crate::ops;
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor, D};

impl RoiHeads {
    /// Per image: softmax class probabilities, every class's deltas decoded onto the proposal
    /// and clipped to the image; then, over all (proposal, foreground class) pairs, those
    /// with probability > `score_thresh` and sides >= `min_size`, NMS'd per class, best
    /// `detections_per_img` kept. Only NMS reads to the host (the candidates' boxes and scores).
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
            let scores = scores
                .narrow(1, 1, c - 1)?
                .to_dtype(DType::F32)?
                .flatten_all()?; // [K * (C-1)]
                                 // The class of each (proposal, class) pair: 1..C per row.
            let labels = Tensor::arange(1u32, c as u32, device)?
                .unsqueeze(0)?
                .broadcast_as((k, c - 1))?
                .flatten_all()?; // [K * (C-1)]
            let confident =
                ops::compare_scalar(&scores, CmpOp::Gt, self.config.score_thresh as f64)?;
            let large = ops::large_boxes_mask(&boxes, self.config.min_size)?;
            let keep = ops::nonzero(&(confident * large)?)?; // [M], ascending
            let boxes = boxes.index_select(&keep, 0)?; // [M, 4]
            let scores_t = scores.index_select(&keep, 0)?; // [M]
            let labels_t = labels.index_select(&keep, 0)?; // [M]

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
