//! Training targets of the box head: ground truth added to the proposals, matching, and the
//! sampled proposals with their labels and regression targets.

use super::{RoiHeads, Target};
use crate::box_coder::check_boxes;
use crate::matcher::{BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS};
use crate::ops;
use crate::sampler::{SampledIndices, BACKGROUND, IGNORE};
use candle_core::{DType, Result, Tensor};

/// Training labels of one image's proposals.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalTargets {
    /// Per proposal: its ground truth's class (>= 1), [`BACKGROUND`] or [`IGNORE`].
    pub labels: Vec<i64>,
    /// Per proposal: index of its ground-truth box (meaningful where the label is >= 1).
    pub matched_gt: Vec<u32>,
}

/// The sampled proposals of every image and what they are trained towards.
#[derive(Debug, Clone)]
pub struct TrainingSamples {
    /// Per image `[S_i, 4]`: sampled proposals, in increasing index order.
    pub proposals: Vec<Tensor>,
    /// Per image `[S_i]` u32: class labels, 0 = background.
    pub labels: Vec<Tensor>,
    /// Per image `[S_i, 4]`: encoded ground truth (zeros for background).
    pub regression_targets: Vec<Tensor>,
}

impl RoiHeads {
    /// Appends each image's ground-truth boxes to its proposals (so every ground truth has at
    /// least one perfect proposal in training).
    ///
    /// # Shapes
    /// - `proposals[i]`: `[K_i, 4]`; returns `[K_i + G_i, 4]`.
    pub fn add_gt_proposals(
        &self,
        proposals: &[Tensor],
        targets: &[Target],
    ) -> Result<Vec<Tensor>> {
        if proposals.len() != targets.len() {
            candle_core::bail!(
                "RoiHeads: {} proposal sets for {} targets",
                proposals.len(),
                targets.len()
            );
        }
        proposals
            .iter()
            .zip(targets)
            .map(|(p, t)| Tensor::cat(&[p, &t.boxes.to_dtype(p.dtype())?], 0))
            .collect()
    }

    /// Labels each proposal with its ground truth's class at IoU >= `fg_iou_thresh`,
    /// background below `bg_iou_thresh`, ignored in between (no low-quality matches). Images
    /// without ground truth are all background.
    pub fn assign_targets_to_proposals(
        &self,
        proposals: &[Tensor],
        targets: &[Target],
    ) -> Result<Vec<ProposalTargets>> {
        proposals
            .iter()
            .zip(targets)
            .map(|(p, t)| {
                let n = check_boxes("RoiHeads proposals", p)?;
                let g = check_boxes("RoiHeads ground-truth boxes", &t.boxes)?;
                let gt_labels = t.labels.to_dtype(DType::I64)?.to_vec1::<i64>()?;
                if gt_labels.len() != g {
                    candle_core::bail!(
                        "RoiHeads: {g} ground-truth boxes but {} labels",
                        gt_labels.len()
                    );
                }
                if g == 0 {
                    return Ok(ProposalTargets {
                        labels: vec![BACKGROUND; n],
                        matched_gt: vec![0; n],
                    });
                }
                let matches = self.matcher.call(&ops::box_iou(&t.boxes, p)?)?; // [K]
                let labels = matches
                    .iter()
                    .map(|&m| match m {
                        BELOW_LOW_THRESHOLD => BACKGROUND,
                        BETWEEN_THRESHOLDS => IGNORE,
                        m => gt_labels[m as usize],
                    })
                    .collect();
                let matched_gt = matches.iter().map(|&m| m.max(0) as u32).collect();
                Ok(ProposalTargets { labels, matched_gt })
            })
            .collect()
    }

    /// Keeps the sampled proposals of each image (positives and negatives together, in
    /// increasing index order as torchvision) with their labels and regression targets.
    /// Sampled positives must be labelled >= 1 and negatives [`BACKGROUND`] (checked).
    ///
    /// # Shapes
    /// - `proposals[i]`: `[K_i + G_i, 4]` (with ground truth, see [`RoiHeads::add_gt_proposals`]).
    pub fn select_training_samples(
        &self,
        proposals: &[Tensor],
        matched: &[ProposalTargets],
        targets: &[Target],
        samples: &[SampledIndices],
    ) -> Result<TrainingSamples> {
        if matched.len() != proposals.len() || samples.len() != proposals.len() {
            candle_core::bail!(
                "RoiHeads::select_training_samples: {} images but {} label sets and {} samples",
                proposals.len(),
                matched.len(),
                samples.len()
            );
        }
        let mut out = TrainingSamples {
            proposals: Vec::new(),
            labels: Vec::new(),
            regression_targets: Vec::new(),
        };
        for (i, (((p, m), t), s)) in proposals
            .iter()
            .zip(matched)
            .zip(targets)
            .zip(samples)
            .enumerate()
        {
            for (&j, positive) in s
                .positive
                .iter()
                .map(|j| (j, true))
                .chain(s.negative.iter().map(|j| (j, false)))
            {
                let label = m.labels.get(j as usize).copied();
                let ok = match label {
                    Some(l) if positive => l >= 1,
                    Some(l) => l == BACKGROUND,
                    None => false,
                };
                if !ok {
                    candle_core::bail!(
                        "RoiHeads: image {i} sampled proposal {j} as {}, but its label is {label:?} \
                         ({} proposals)",
                        if positive { "positive" } else { "negative" },
                        m.labels.len()
                    );
                }
            }
            let mut index = s.all();
            index.sort_unstable();
            let device = p.device();
            let idx = Tensor::new(index.as_slice(), device)?;
            let sampled = p.index_select(&idx, 0)?; // [S, 4]
            let labels: Vec<u32> = index.iter().map(|&j| m.labels[j as usize] as u32).collect();
            // Background proposals regress onto themselves (zero targets, no log(0)); only
            // foreground targets enter the loss.
            let reference = if t.boxes.dim(0)? == 0 {
                sampled.clone()
            } else {
                let gi: Vec<u32> = index.iter().map(|&j| m.matched_gt[j as usize]).collect();
                let gt = t
                    .boxes
                    .to_dtype(p.dtype())?
                    .index_select(&Tensor::new(gi.as_slice(), device)?, 0)?; // [S, 4]
                let fg: Vec<u8> = labels.iter().map(|&l| u8::from(l >= 1)).collect();
                let fg = Tensor::new(fg.as_slice(), device)?
                    .unsqueeze(1)?
                    .broadcast_as(gt.shape())?;
                fg.where_cond(&gt, &sampled)?
            };
            out.regression_targets
                .push(self.box_coder.encode(&reference, &sampled)?);
            out.labels.push(Tensor::new(labels.as_slice(), device)?);
            out.proposals.push(sampled);
        }
        Ok(out)
    }
}
