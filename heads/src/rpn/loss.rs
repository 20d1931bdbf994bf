//! RPN training targets and losses.

use super::{Rpn, RpnLosses, RpnOutput};
use crate::box_coder::check_boxes;
use crate::losses::{binary_cross_entropy_with_logits, smooth_l1_loss_sum, SMOOTH_L1_BETA};
use crate::matcher::BETWEEN_THRESHOLDS;
use crate::ops::{self, transfer};
use crate::sampler::{SampledIndices, SampledTensors, BACKGROUND, FOREGROUND, IGNORE};
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor};

/// Training labels of one image's anchors, on the anchors' device.
#[derive(Debug, Clone)]
pub struct AnchorTargets {
    /// I64 `[A_total]`: [`FOREGROUND`], [`BACKGROUND`] or [`IGNORE`] per anchor.
    pub labels: Tensor,
    /// U32 `[A_total]`: index of each anchor's ground-truth box (meaningful for foreground
    /// anchors only).
    pub matched_gt: Tensor,
}

/// Per prediction, from the matcher's values: `on_match` where matched (`>= 0`), [`IGNORE`]
/// between the thresholds, [`BACKGROUND`] below; and the matched index (0 where unmatched).
///
/// # Shapes
/// `matches [N]` I64, `on_match [N]` I64 → (I64 `[N]`, U32 `[N]`)
pub(crate) fn labels_from_matches(matches: &Tensor, on_match: &Tensor) -> Result<(Tensor, Tensor)> {
    let device = matches.device();
    let n = matches.dim(0)?;
    let ignore = Tensor::full(IGNORE, n, device)?;
    let background = Tensor::full(BACKGROUND, n, device)?;
    let unmatched = ops::compare_scalar(matches, CmpOp::Eq, BETWEEN_THRESHOLDS as f64)?
        .where_cond(&ignore, &background)?;
    let labels = ops::compare_scalar(matches, CmpOp::Ge, 0.0)?.where_cond(on_match, &unmatched)?;
    let matched = matches
        .maximum(&Tensor::zeros(n, DType::I64, device)?)?
        .to_dtype(DType::U32)?;
    Ok((labels, matched))
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
        let device = anchors.device();
        gt_boxes
            .iter()
            .map(|gt| {
                if check_boxes("Rpn ground-truth boxes", gt)? == 0 {
                    return Ok(AnchorTargets {
                        labels: Tensor::full(BACKGROUND, num_anchors, device)?,
                        matched_gt: Tensor::zeros(num_anchors, DType::U32, device)?,
                    });
                }
                let iou = ops::box_iou(gt, anchors)?; // [G, A_total]
                let matches = self.matcher.call(&iou)?; // [A_total]
                let foreground = Tensor::full(FOREGROUND, num_anchors, device)?;
                let (labels, matched_gt) = labels_from_matches(&matches, &foreground)?;
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
        let total = out.objectness.dim(1)?;
        let device = out.objectness.device();
        let mut on_device = Vec::with_capacity(samples.len());
        for (i, (t, s)) in targets.iter().zip(samples).enumerate() {
            check_sampled_labels(i, t, s, total)?;
            on_device.push(SampledTensors::upload(s, device)?);
        }
        self.compute_loss_sampled(out, targets, gt_boxes, &on_device)
    }

    /// [`Rpn::compute_loss`] with the samples on the device (as the sampler draws them): no
    /// host read.
    pub fn compute_loss_sampled(
        &self,
        out: &RpnOutput,
        targets: &[AnchorTargets],
        gt_boxes: &[Tensor],
        samples: &[SampledTensors],
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
        let mut sampled = Vec::new(); // per image: flat indices into [B * A_total]
        let mut sampled_labels = Vec::new(); // per image: 1 for positives, 0 for negatives
        let mut positives = Vec::new(); // per image: flat indices of sampled positives
        let mut encoded = Vec::new(); // per image: [P_i, 4]
        let mut num_sampled = 0usize;
        for (i, ((t, s), gt)) in targets.iter().zip(samples).zip(gt_boxes).enumerate() {
            let (p, q) = (s.positive.dim(0)?, s.negative.dim(0)?);
            if p + q == 0 {
                continue;
            }
            num_sampled += p + q;
            let base = Tensor::full((i * total) as u32, p + q, device)?;
            sampled.push(s.all()?.add(&base)?); // [P + Q]
            sampled_labels.push(Tensor::cat(
                &[
                    Tensor::ones(p, DType::F32, device)?,
                    Tensor::zeros(q, DType::F32, device)?,
                ],
                0,
            )?);
            if p == 0 {
                continue;
            }
            positives.push(s.positive.add(&base.narrow(0, 0, p)?)?); // [P]
            let matched = t.matched_gt.index_select(&s.positive, 0)?; // [P]
            let matched_gt = gt.index_select(&matched, 0)?; // [P, 4]
            let anchors = out.anchors.index_select(&s.positive, 0)?; // [P, 4]
            encoded.push(self.box_coder.encode(&matched_gt, &anchors)?);
        }
        if num_sampled == 0 {
            candle_core::bail!("Rpn::compute_loss: no anchor sampled in the whole batch");
        }
        let objectness = out
            .objectness
            .flatten_all()?
            .index_select(&Tensor::cat(&sampled, 0)?, 0)?; // [S]
        let labels = Tensor::cat(&sampled_labels, 0)?.to_dtype(objectness.dtype())?; // [S]
        let objectness_loss = binary_cross_entropy_with_logits(&objectness, &labels)?;

        let box_loss = if positives.is_empty() {
            Tensor::zeros((), out.deltas.dtype(), device)?
        } else {
            let deltas = out
                .deltas
                .reshape((num_images * total, 4))?
                .index_select(&Tensor::cat(&positives, 0)?, 0)?; // [P, 4]
            let targets = Tensor::cat(&encoded, 0)?.to_dtype(deltas.dtype())?; // [P, 4]
            smooth_l1_loss_sum(&deltas, &targets, SMOOTH_L1_BETA)?
        };
        let box_reg = (box_loss / num_sampled as f64)?;
        Ok(RpnLosses {
            objectness: objectness_loss,
            box_reg,
            num_samples: sampled.len(),
        })
    }
}

/// Checks that samples from elsewhere (e.g. a fixture) agree with our matching: positives
/// foreground, negatives background (one read of the sampled anchors' labels).
fn check_sampled_labels(
    image: usize,
    targets: &AnchorTargets,
    s: &SampledIndices,
    total: usize,
) -> Result<()> {
    let all = s.all();
    if all.is_empty() {
        return Ok(());
    }
    let wanted: Vec<(u32, i64)> = s
        .positive
        .iter()
        .map(|&j| (j, FOREGROUND))
        .chain(s.negative.iter().map(|&j| (j, BACKGROUND)))
        .collect();
    let mismatch = |j: u32, want: i64, got: Option<i64>| {
        candle_core::Error::msg(format!(
            "Rpn::compute_loss: image {image} sampled anchor {j} as label {want}, \
             but it is labelled {got:?} ({total} anchors)"
        ))
    };
    if let Some(&(j, want)) = wanted.iter().find(|(j, _)| *j as usize >= total) {
        return Err(mismatch(j, want, None));
    }
    let n = all.len();
    let index = transfer::upload(all, n, targets.labels.device())?;
    let got: Vec<i64> = transfer::read(
        "rpn: check given samples",
        &targets.labels.index_select(&index, 0)?,
    )?;
    for (&(j, want), got) in wanted.iter().zip(got) {
        if got != want {
            return Err(mismatch(j, want, Some(got)));
        }
    }
    Ok(())
}
