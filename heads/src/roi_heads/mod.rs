//! The second stage of Faster R-CNN (torchvision's `RoIHeads`, box branch only).
//!
//! Proposals are pooled from P2..P5 by [`MultiScaleRoiAlign`] into 7x7 features, run through
//! the [`TwoMlpHead`] and the [`FastRcnnPredictor`]. [`RoiHeads::detect`] post-processes the
//! predictions into [`Detections`]; [`RoiHeads::losses`] first adds the ground-truth boxes to
//! the proposals, matches and samples them, then returns the [`RoiLosses`].

mod box_head;
mod loss;
mod postprocess;
mod sampling;

pub use box_head::{FastRcnnPredictor, TwoMlpHead};
pub use loss::fastrcnn_loss;
pub use sampling::{ProposalTargets, TrainingSamples};

use crate::box_coder::BoxCoder;
use crate::matcher::Matcher;
use crate::ops::MultiScaleRoiAlign;
use crate::sampler::BalancedPositiveNegativeSampler;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Box-head hyper-parameters; `Default` is torchvision's `FasterRCNN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoiHeadsConfig {
    /// Output size of the RoI pooling, pixels per side (`MultiScaleRoIAlign(output_size)`).
    pub pool_size: usize,
    /// RoIAlign samples per bin side, <= 0 for adaptive (`sampling_ratio`).
    pub sampling_ratio: i64,
    /// Number of leading FPN levels pooled from: P2..P5 (`featmap_names=['0'..'3']`).
    pub pooled_levels: usize,
    /// Width of fc6 and fc7 (`TwoMLPHead(representation_size)`).
    pub representation_size: usize,
    /// IoU at or above which a proposal takes its ground truth's class (`box_fg_iou_thresh`).
    pub fg_iou_thresh: f32,
    /// IoU below which a proposal is background (`box_bg_iou_thresh`).
    pub bg_iou_thresh: f32,
    /// Proposals sampled per image for the losses (`box_batch_size_per_image`).
    pub batch_size_per_image: usize,
    /// Largest positive share of the sampled proposals (`box_positive_fraction`).
    pub positive_fraction: f64,
    /// Box-coder weights of (dx, dy, dw, dh) (`bbox_reg_weights`).
    pub bbox_reg_weights: [f32; 4],
    /// Detections need a class probability > this (`box_score_thresh`).
    pub score_thresh: f32,
    /// IoU above which per-class NMS drops the lower-scoring detection (`box_nms_thresh`).
    pub nms_thresh: f64,
    /// Detections kept per image, best first (`box_detections_per_img`).
    pub detections_per_img: usize,
    /// Detections narrower or shorter than this many pixels are dropped.
    pub min_size: f64,
}

impl Default for RoiHeadsConfig {
    fn default() -> Self {
        Self {
            pool_size: 7,
            sampling_ratio: 2,
            pooled_levels: 4,
            representation_size: 1024,
            fg_iou_thresh: 0.5,
            bg_iou_thresh: 0.5,
            batch_size_per_image: 512,
            positive_fraction: 0.25,
            bbox_reg_weights: [10.0, 10.0, 5.0, 5.0],
            score_thresh: 0.05,
            nms_thresh: 0.5,
            detections_per_img: 100,
            min_size: 1e-2,
        }
    }
}

/// Ground truth of one image.
#[derive(Debug, Clone)]
pub struct Target {
    /// `[G, 4]` f32 xyxy in resized-image pixels (`G = 0` allowed).
    pub boxes: Tensor,
    /// `[G]` integer class labels in `1..num_classes` (0 is background).
    pub labels: Tensor,
}

/// Final detections of one image, best first.
#[derive(Debug, Clone)]
pub struct Detections {
    /// `[D, 4]` f32 xyxy in resized-image pixels.
    pub boxes: Tensor,
    /// `[D]` f32 class probabilities, decreasing.
    pub scores: Tensor,
    /// `[D]` u32 labels in `1..num_classes`.
    pub labels: Tensor,
}

/// The two box-head losses (scalars).
#[derive(Debug, Clone)]
pub struct RoiLosses {
    /// Cross-entropy over the sampled proposals (`loss_classifier`).
    pub classifier: Tensor,
    /// Smooth-L1 of the true class's deltas / number sampled (`loss_box_reg`).
    pub box_reg: Tensor,
    /// Proposals sampled in the batch: both losses are divided by it.
    pub num_samples: usize,
}

/// Box branch of the second stage.
pub struct RoiHeads {
    config: RoiHeadsConfig,
    box_roi_pool: MultiScaleRoiAlign,
    box_head: TwoMlpHead,
    box_predictor: FastRcnnPredictor,
    box_coder: BoxCoder,
    matcher: Matcher,
}

impl RoiHeads {
    /// `vb` points at `roi_heads` (weights `box_head.fc6/fc7.*`, `box_predictor.cls_score/
    /// bbox_pred.*`); `in_channels` is the FPN width; `num_classes` includes background.
    pub fn new(
        config: &RoiHeadsConfig,
        in_channels: usize,
        num_classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if num_classes < 2 {
            candle_core::bail!(
                "RoiHeads: {num_classes} classes, need background plus at least one"
            );
        }
        let pool = config.pool_size;
        let r = config.representation_size;
        Ok(Self {
            box_roi_pool: MultiScaleRoiAlign::new((pool, pool), config.sampling_ratio),
            box_head: TwoMlpHead::new(in_channels * pool * pool, r, vb.pp("box_head"))?,
            box_predictor: FastRcnnPredictor::new(r, num_classes, vb.pp("box_predictor"))?,
            box_coder: BoxCoder::new(config.bbox_reg_weights),
            matcher: Matcher::new(config.fg_iou_thresh, config.bg_iou_thresh, false)?,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &RoiHeadsConfig {
        &self.config
    }

    pub fn num_classes(&self) -> usize {
        self.box_predictor.num_classes()
    }

    /// Pools the boxes and runs head and predictor.
    ///
    /// # Shapes
    /// - `features`: the FPN levels (P2..P6; the first `pooled_levels` are used), each
    ///   `[B, C, H_l, W_l]`; `boxes[i]`: `[K_i, 4]`.
    /// - returns `(logits [sum K_i, num_classes], deltas [sum K_i, 4 * num_classes])`.
    pub fn predict(
        &self,
        features: &[Tensor],
        boxes: &[Tensor],
        image_sizes: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)> {
        let levels = self.config.pooled_levels;
        if features.len() < levels {
            candle_core::bail!(
                "RoiHeads: {} feature maps, {levels} pooled levels configured",
                features.len()
            );
        }
        // RoIAlign in f32 (as torchvision's autocast) whatever the features' precision.
        let features = features[..levels]
            .iter()
            .map(crate::widened)
            .collect::<Result<Vec<_>>>()?;
        let pooled = self.box_roi_pool.forward(&features, boxes, image_sizes)?; // [K, C, 7, 7]
        let x = self.box_head.forward(&pooled)?; // [K, R]
        self.box_predictor.forward(&x)
    }

    /// Inference: detections per image from the RPN's proposals.
    pub fn detect(
        &self,
        features: &[Tensor],
        proposals: &[Tensor],
        image_sizes: &[(usize, usize)],
    ) -> Result<Vec<Detections>> {
        let (logits, deltas) = self.predict(features, proposals, image_sizes)?;
        self.postprocess_detections(&logits, &deltas, proposals, image_sizes)
    }

    /// Training: the losses, proposals sampled by `sampler` (seeded).
    pub fn losses(
        &self,
        features: &[Tensor],
        proposals: &[Tensor],
        image_sizes: &[(usize, usize)],
        targets: &[Target],
        sampler: &mut BalancedPositiveNegativeSampler,
    ) -> Result<RoiLosses> {
        let with_gt = self.add_gt_proposals(proposals, targets)?;
        let matched = self.assign_targets_to_proposals(&with_gt, targets)?;
        let samples = matched
            .iter()
            .map(|m| sampler.sample_tensor(&m.labels))
            .collect::<Result<Vec<_>>>()?;
        let samples =
            self.select_training_samples_sampled(&with_gt, &matched, targets, &samples)?;
        self.losses_on_samples(features, &samples, image_sizes)
    }

    /// Training with the sampled proposals given (e.g. torchvision's, from a fixture).
    pub fn losses_on_samples(
        &self,
        features: &[Tensor],
        samples: &TrainingSamples,
        image_sizes: &[(usize, usize)],
    ) -> Result<RoiLosses> {
        let (logits, deltas) = self.predict(features, &samples.proposals, image_sizes)?;
        let labels = Tensor::cat(&samples.labels, 0)?;
        let targets = Tensor::cat(&samples.regression_targets, 0)?;
        fastrcnn_loss(&logits, &deltas, &labels, &targets)
    }

    /// A fresh sampler with this head's batch size and positive fraction.
    pub fn sampler(&self, seed: u64) -> BalancedPositiveNegativeSampler {
        BalancedPositiveNegativeSampler::new(
            self.config.batch_size_per_image,
            self.config.positive_fraction,
            seed,
        )
    }
}

#[cfg(test)]
mod tests;
