//! Training targets of the box head: ground truth added to the proposals, matching, and the
//! sampled proposals with their labels and regression targets.

use super::{RoiHeads, Target};
use crate::box_coder::check_boxes;
use crate::ops::{self, transfer};
use crate::rpn::labels_from_matches;
use crate::sampler::{SampledIndices, SampledTensors, BACKGROUND};
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor};

/// Training labels of one image's proposals, on their device.
#[derive(Debug, Clone)]
pub struct ProposalTargets {
    /// I64 `[K]`: per proposal its ground truth's class (>= 1), [`BACKGROUND`] or
    /// [`IGNORE`](crate::sampler::IGNORE).
    pub labels: Tensor,
    /// U32 `[K]`: per proposal the index of its ground-truth box (meaningful where the label
    /// is >= 1).
    pub matched_gt: Tensor,
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
                let labels = t.labels.dims1()?;
                if labels != g {
                    candle_core::bail!("RoiHeads: {g} ground-truth boxes but {labels} labels");
                }
                let device = p.device();
                if g == 0 {
                    return Ok(ProposalTargets {
                        labels: Tensor::full(BACKGROUND, n, device)?,
                        matched_gt: Tensor::zeros(n, DType::U32, device)?,
                    });
                }
                let matches = self.matcher.call(&ops::box_iou(&t.boxes, p)?)?; // [K]
                let (_, matched) = labels_from_matches(&matches, &matches)?;
                let classes = t.labels.to_dtype(DType::I64)?.index_select(&matched, 0)?; // [K]
                let (labels, matched_gt) = labels_from_matches(&matches, &classes)?;
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
        let mut on_device = Vec::with_capacity(samples.len());
        for (i, ((p, m), s)) in proposals.iter().zip(matched).zip(samples).enumerate() {
            check_sampled_labels(i, m, s)?;
            on_device.push(SampledTensors::upload(s, p.device())?);
        }
        self.select_training_samples_sampled(proposals, matched, targets, &on_device)
    }

    /// [`RoiHeads::select_training_samples`] with the samples on the device (as the sampler
    /// draws them): no host read.
    pub fn select_training_samples_sampled(
        &self,
        proposals: &[Tensor],
        matched: &[ProposalTargets],
        targets: &[Target],
        samples: &[SampledTensors],
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
        for (((p, m), t), s) in proposals.iter().zip(matched).zip(targets).zip(samples) {
            let device = p.device();
            let count = s.positive.dim(0)? + s.negative.dim(0)?;
            if count == 0 {
                out.proposals
                    .push(Tensor::zeros((0, 4), p.dtype(), device)?);
                out.labels.push(Tensor::zeros(0, DType::U32, device)?);
                out.regression_targets
                    .push(Tensor::zeros((0, 4), p.dtype(), device)?);
                continue;
            }
            // Increasing index order, as torchvision (a few hundred indices).
            let (index, _) = s.all()?.sort_last_dim(true)?; // [S]
            let sampled = p.index_select(&index, 0)?; // [S, 4]
            let labels = m.labels.index_select(&index, 0)?; // [S] I64, all >= 0
                                                            // Background proposals regress onto themselves (zero targets, no log(0)); only
                                                            // foreground targets enter the loss.
            let reference = if t.boxes.dim(0)? == 0 {
                sampled.clone()
            } else {
                let gi = m.matched_gt.index_select(&index, 0)?; // [S]
                let gt = t.boxes.to_dtype(p.dtype())?.index_select(&gi, 0)?; // [S, 4]
                let fg = ops::compare_scalar(&labels, CmpOp::Ge, 1.0)?
                    .unsqueeze(1)?
                    .broadcast_as(gt.shape())?;
                fg.where_cond(&gt, &sampled)?
            };
            out.regression_targets
                .push(self.box_coder.encode(&reference, &sampled)?);
            out.labels.push(labels.to_dtype(DType::U32)?);
            out.proposals.push(sampled);
        }
        Ok(out)
    }
}

/// Checks that samples from elsewhere (e.g. a fixture) agree with our matching: positives
/// labelled >= 1, negatives [`BACKGROUND`] (one read of the sampled proposals' labels).
fn check_sampled_labels(image: usize, m: &ProposalTargets, s: &SampledIndices) -> Result<()> {
    let n = m.labels.dim(0)?;
    let wanted: Vec<(u32, bool)> = s
        .positive
        .iter()
        .map(|&j| (j, true))
        .chain(s.negative.iter().map(|&j| (j, false)))
        .collect();
    let mismatch = |j: u32, positive: bool, label: Option<i64>| {
        candle_core::Error::msg(format!(
            "RoiHeads: image {image} sampled proposal {j} as {}, but its label is {label:?} \
             ({n} proposals)",
            if positive { "positive" } else { "negative" },
        ))
    };
    if let Some(&(j, positive)) = wanted.iter().find(|(j, _)| *j as usize >= n) {
        return Err(mismatch(j, positive, None));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let index: Vec<u32> = wanted.iter().map(|w| w.0).collect();
    let k = index.len();
    let index = transfer::upload(index, k, m.labels.device())?;
    let labels: Vec<i64> = transfer::read(
        "roi_heads: check given samples",
        &m.labels.index_select(&index, 0)?,
    )?;
    for (&(j, positive), label) in wanted.iter().zip(labels) {
        let ok = if positive {
            label >= 1
        } else {
            label == BACKGROUND
        };
        if !ok {
            return Err(mismatch(j, positive, Some(label)));
        }
    }
    Ok(())
}
