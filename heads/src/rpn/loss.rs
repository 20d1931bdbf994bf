//! RPN training targets and losses.

use super::{Rpn, RpnLosses, RpnOutput};
use crate::box_coder::check_boxes;
use crate::losses::{binary_cross_entropy_with_logits, smooth_l1_loss_sum, SMOOTH_L1_BETA};
use crate::matcher::{BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS};
use crate::ops;
use crate::sampler::{SampledIndices, BACKGROUND, FOREGROUND, IGNORE};
use candle_core::{Result, Tensor};

/// Training labels of one image's anchors.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorTargets {
    /// Per anchor: [`FOREGROUND`], [`BACKGROUND`] or [`IGNORE`].
    pub labels: Vec<i64>,
    /// Per anchor: index of its ground-truth box (meaningful for foreground anchors only).
    pub matched_gt: Vec<u32>,
}

impl Rpn {
    /// Labels every anchor of every image from its IoU with that image's ground truth:
    /// foreground at IoU >= `fg_iou_thresh` or when it is a ground truth's best anchor,
    /// background below `bg_iou_thresh`, ignored in between. Without ground truth every
    /// anchor is background.
    ///
    /// # Shapes
    /// - `anchors`: `[A_total, 4]`; `gt_boxes[i]`: `[G_i, 4]`.
    pub fn assign_targets_to_anchors(
        &self,
        anchors: &Tensor,
        gt_boxes: &[Tensor],
    ) -> Result<Vec<AnchorTargets>> {
        let num_anchors = check_boxes("Rpn anchors", anchors)?;
        gt_boxes
            .iter()
            .map(|gt| {
                if check_boxes("Rpn ground-truth boxes", gt)? == 0 {
                    return Ok(AnchorTargets {
                        labels: vec![BACKGROUND; num_anchors],
                        matched_gt: vec![0; num_anchors],
                    });
                }
                let iou = ops::box_iou(gt, anchors)?; // [G, A_total]
                let matches = self.matcher.call(&iou)?;
                let labels = matches
                    .iter()
                    .map(|&m| match m {
                        BELOW_LOW_THRESHOLD => BACKGROUND,
                        BETWEEN_THRESHOLDS => IGNORE,
                        _ => FOREGROUND,
                    })
                    .collect();
                let matched_gt = matches.iter().map(|&m| m.max(0) as u32).collect();
                Ok(AnchorTargets { labels, matched_gt })
            })
            .collect()
    }

    /// The losses over the given samples (torchvision's `compute_loss`): mean binary
    /// cross-entropy of the sampled anchors' objectness, and smooth-L1 (beta 1/9) of the
    /// sampled positives' deltas against their encoded ground truth, summed and divided by
    /// the number of sampled anchors of the whole batch.
    ///
    /// `samples[i]` indexes image `i`'s anchors; positives must be foreground and negatives
    /// background in `targets[i]` (checked: samples from elsewhere, e.g. a fixture, must agree
    /// with our matching).
    pub fn compute_loss(
        &self,
        out: &RpnOutput,
        targets: &[AnchorTargets],
        gt_boxes: &[Tensor],
        samples: &[SampledIndices],
    ) -> Result<RpnLosses> {
        let (num_images, total) = out.objectness.dims2()?;
        if targets.len() != num_images
            || samples.len() != num_images
            || gt_boxes.len() != num_images
        {
            candle_core::bail!(
                "Rpn::compute_loss: batch of {num_images} but {} targets, {} samples, {} gt sets",
                targets.len(),
                samples.len(),
                gt_boxes.len()
            );
        }
        let device = out.objectness.device();
        let mut sampled = Vec::new(); // flat indices into [B * A_total]
        let mut sampled_labels = Vec::new();
        let mut positives = Vec::new(); // flat indices of sampled positives
        let mut encoded = Vec::new(); // [P_i, 4] per image
        for (i, ((t, s), gt)) in targets.iter().zip(samples).zip(gt_boxes).enumerate() {
            let base = (i * total) as u32;
            for (&j, want) in s
                .positive
                .iter()
                .map(|j| (j, FOREGROUND))
                .chain(s.negative.iter().map(|j| (j, BACKGROUND)))
            {
                let got = t.labels.get(j as usize).copied();
                if got != Some(want) {
                    candle_core::bail!(
                        "Rpn::compute_loss: image {i} sampled anchor {j} as label {want}, \
                         but it is labelled {got:?} ({total} anchors)"
                    );
                }
                sampled.push(base + j);
                sampled_labels.push(want as f32);
            }
            if s.positive.is_empty() {
                continue;
            }
            positives.extend(s.positive.iter().map(|&j| base + j));
            let pos = Tensor::new(s.positive.as_slice(), device)?;
            let matched: Vec<u32> = s
                .positive
                .iter()
                .map(|&j| t.matched_gt[j as usize])
                .collect();
            let matched_gt = gt.index_select(&Tensor::new(matched.as_slice(), device)?, 0)?;
            let anchors = out.anchors.index_select(&pos, 0)?; // [P_i, 4]
            encoded.push(self.box_coder.encode(&matched_gt, &anchors)?);
        }
        if sampled.is_empty() {
            candle_core::bail!("Rpn::compute_loss: no anchor sampled in the whole batch");
        }
        let objectness = out
            .objectness
            .flatten_all()?
            .index_select(&Tensor::new(sampled.as_slice(), device)?, 0)?; // [S]
        let labels = Tensor::new(sampled_labels.as_slice(), device)?;
        let objectness_loss = binary_cross_entropy_with_logits(&objectness, &labels)?;

        let box_loss = if positives.is_empty() {
            Tensor::zeros((), out.deltas.dtype(), device)?
        } else {
            let deltas = out
                .deltas
                .reshape((num_images * total, 4))?
                .index_select(&Tensor::new(positives.as_slice(), device)?, 0)?; // [P, 4]
            let targets = Tensor::cat(&encoded, 0)?.to_dtype(deltas.dtype())?; // [P, 4]
            smooth_l1_loss_sum(&deltas, &targets, SMOOTH_L1_BETA)?
        };
        let box_reg = (box_loss / sampled.len() as f64)?;
        Ok(RpnLosses {
            objectness: objectness_loss,
            box_reg,
            num_samples: sampled.len(),
        })
    }
}
