//! Region proposal network (torchvision's `RegionProposalNetwork`).
//!
//! [`Rpn::detect`] turns FPN features into per-image proposals; [`Rpn::losses`] does the same
//! with the training top-n values and also returns the objectness and box-regression losses
//! against the ground truth. Both run [`Rpn::predict`] first, which applies the [`RpnHead`]
//! and lays the predictions out in the anchors' order.

mod head;
mod loss;
mod proposals;

pub use head::{ConvFn, RpnHead};
pub(crate) use loss::labels_from_matches;
pub use loss::AnchorTargets;

use crate::anchors::{AnchorGenerator, AnchorGeneratorConfig};
use crate::box_coder::BoxCoder;
use crate::matcher::Matcher;
use crate::sampler::BalancedPositiveNegativeSampler;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// RPN hyper-parameters; `Default` is torchvision's `FasterRCNN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RpnConfig {
    /// Anchor sizes and ratios per level (`rpn_anchor_generator`).
    pub anchors: AnchorGeneratorConfig,
    /// IoU at or above which an anchor is foreground (`rpn_fg_iou_thresh`).
    pub fg_iou_thresh: f32,
    /// IoU below which an anchor is background (`rpn_bg_iou_thresh`).
    pub bg_iou_thresh: f32,
    /// Anchors sampled per image for the losses (`rpn_batch_size_per_image`).
    pub batch_size_per_image: usize,
    /// Largest positive share of the sampled anchors (`rpn_positive_fraction`).
    pub positive_fraction: f64,
    /// Top-scoring anchors kept per level before NMS in training (`rpn_pre_nms_top_n_train`).
    pub pre_nms_top_n_train: usize,
    /// Same at inference (`rpn_pre_nms_top_n_test`).
    pub pre_nms_top_n_test: usize,
    /// Proposals kept per image after NMS in training (`rpn_post_nms_top_n_train`).
    pub post_nms_top_n_train: usize,
    /// Same at inference (`rpn_post_nms_top_n_test`).
    pub post_nms_top_n_test: usize,
    /// IoU above which NMS drops the lower-scoring proposal of a level (`rpn_nms_thresh`).
    pub nms_thresh: f64,
    /// Proposals need an objectness probability >= this (`rpn_score_thresh`).
    pub score_thresh: f32,
    /// Proposals narrower or shorter than this many pixels are dropped (`min_size`).
    pub min_size: f64,
}

impl Default for RpnConfig {
    fn default() -> Self {
        Self {
            anchors: AnchorGeneratorConfig::default(),
            fg_iou_thresh: 0.7,
            bg_iou_thresh: 0.3,
            batch_size_per_image: 256,
            positive_fraction: 0.5,
            pre_nms_top_n_train: 2000,
            pre_nms_top_n_test: 1000,
            post_nms_top_n_train: 2000,
            post_nms_top_n_test: 1000,
            nms_thresh: 0.7,
            score_thresh: 0.0,
            min_size: 1e-3,
        }
    }
}

/// Proposals of each image, best first.
#[derive(Debug, Clone)]
pub struct Proposals {
    /// Per image `[K_i, 4]` f32 xyxy in resized-image pixels.
    pub boxes: Vec<Tensor>,
    /// Per image `[K_i]` objectness probabilities, decreasing.
    pub scores: Vec<Tensor>,
}

/// The two RPN losses (scalars).
#[derive(Debug, Clone)]
pub struct RpnLosses {
    /// Binary cross-entropy over the sampled anchors (`loss_objectness`).
    pub objectness: Tensor,
    /// Smooth-L1 over the sampled positives / number sampled (`loss_rpn_box_reg`).
    pub box_reg: Tensor,
    /// Anchors sampled in the batch: both losses are divided by it.
    pub num_samples: usize,
}

/// The head's predictions laid out in anchor order, with the anchors.
#[derive(Debug, Clone)]
pub struct RpnOutput {
    /// `[B, A_total]` objectness logits.
    pub objectness: Tensor,
    /// `[B, A_total, 4]` box deltas (RPN weights 1, 1, 1, 1).
    pub deltas: Tensor,
    /// `[A_total, 4]` anchors, the same for every image of the batch.
    pub anchors: Tensor,
    /// Anchors per level; they sum to `A_total`.
    pub num_anchors_per_level: Vec<usize>,
}

/// The region proposal network.
#[derive(Debug, Clone)]
pub struct Rpn {
    config: RpnConfig,
    anchor_generator: AnchorGenerator,
    head: RpnHead,
    box_coder: BoxCoder,
    matcher: Matcher,
}

impl Rpn {
    /// `vb` points at `rpn` (weights under `rpn.head.*`); `in_channels` is the FPN width.
    pub fn new(config: &RpnConfig, in_channels: usize, vb: VarBuilder) -> Result<Self> {
        let anchor_generator = AnchorGenerator::new(&config.anchors);
        let per_location = anchor_generator.num_anchors_per_location();
        let num_anchors = per_location[0];
        if per_location.iter().any(|&a| a != num_anchors) {
            candle_core::bail!(
                "Rpn: the shared head needs the same number of anchors on every level, got {per_location:?}"
            );
        }
        Ok(Self {
            head: RpnHead::new(in_channels, num_anchors, vb.pp("head"))?,
            anchor_generator,
            box_coder: BoxCoder::new([1.0; 4]),
            matcher: Matcher::new(config.fg_iou_thresh, config.bg_iou_thresh, true)?,
            config: config.clone(),
        })
    }

    /// The same RPN with its head's convolutions computed by `conv_fn` (e.g. a faster CPU
    /// kernel the caller owns); the default is candle's `conv2d`.
    pub fn with_conv(self, conv_fn: ConvFn) -> Self {
        Self {
            head: self.head.with_conv(conv_fn),
            ..self
        }
    }

    pub fn config(&self) -> &RpnConfig {
        &self.config
    }

    pub fn anchor_generator(&self) -> &AnchorGenerator {
        &self.anchor_generator
    }

    pub fn box_coder(&self) -> &BoxCoder {
        &self.box_coder
    }

    /// A fresh sampler with this RPN's batch size and positive fraction.
    pub fn sampler(&self, seed: u64) -> BalancedPositiveNegativeSampler {
        BalancedPositiveNegativeSampler::new(
            self.config.batch_size_per_image,
            self.config.positive_fraction,
            seed,
        )
    }

    /// Head predictions and anchors for a batch.
    ///
    /// # Shapes
    /// - `features[l]`: `[B, C, H_l, W_l]`; `padded_size`: the batch tensor's `(H, W)`.
    /// - returns `objectness [B, A_total]`, `deltas [B, A_total, 4]`, `anchors [A_total, 4]`.
    pub fn predict(&self, features: &[Tensor], padded_size: (usize, usize)) -> Result<RpnOutput> {
        let predictions = self.head.forward(features)?;
        let mut objectness = Vec::with_capacity(predictions.len());
        let mut deltas = Vec::with_capacity(predictions.len());
        let mut feature_sizes = Vec::with_capacity(predictions.len());
        let mut num_anchors_per_level = Vec::with_capacity(predictions.len());
        for (logits, box_deltas) in predictions {
            let (b, a, h, w) = logits.dims4()?;
            // [B, A, H, W] -> [B, H, W, A] -> [B, H*W*A]: the anchors' (y, x, anchor) order.
            objectness.push(logits.permute((0, 2, 3, 1))?.reshape((b, h * w * a))?);
            // [B, A*4, H, W] -> [B, A, 4, H, W] -> [B, H, W, A, 4] -> [B, H*W*A, 4]
            let d = box_deltas
                .reshape((b, a, 4, h, w))?
                .permute((0, 3, 4, 1, 2))?;
            deltas.push(d.reshape((b, h * w * a, 4))?);
            feature_sizes.push((h, w));
            num_anchors_per_level.push(h * w * a);
        }
        let device = features
            .first()
            .map(|f| f.device().clone())
            .ok_or_else(|| candle_core::Error::Msg("Rpn: no feature maps".into()))?;
        let anchors = self
            .anchor_generator
            .forward(padded_size, &feature_sizes, &device)?;
        // Under mixed precision the head's convs answer in bf16; decoding, top-k and the losses
        // run in f32, as torchvision's autocast does.
        Ok(RpnOutput {
            objectness: crate::widened(&Tensor::cat(&objectness, 1)?)?, // [B, A_total]
            deltas: crate::widened(&Tensor::cat(&deltas, 1)?)?,         // [B, A_total, 4]
            anchors: Tensor::cat(&anchors, 0)?,                         // [A_total, 4]
            num_anchors_per_level,
        })
    }

    /// Inference: proposals with the test-time top-n values.
    ///
    /// # Shapes
    /// - `features[l]`: `[B, C, H_l, W_l]`; `image_sizes`: each image's `(h, w)` before padding.
    pub fn detect(
        &self,
        features: &[Tensor],
        padded_size: (usize, usize),
        image_sizes: &[(usize, usize)],
    ) -> Result<Proposals> {
        let out = self.predict(features, padded_size)?;
        self.filter_proposals(
            &out,
            image_sizes,
            self.config.pre_nms_top_n_test,
            self.config.post_nms_top_n_test,
        )
    }

    /// Training: proposals with the training top-n values and the losses, the anchors
    /// sampled by `sampler` (seeded).
    ///
    /// # Shapes
    /// - `gt_boxes[i]`: `[G_i, 4]` f32 xyxy, `G_i = 0` allowed (all anchors background).
    pub fn losses(
        &self,
        features: &[Tensor],
        padded_size: (usize, usize),
        image_sizes: &[(usize, usize)],
        gt_boxes: &[Tensor],
        sampler: &mut BalancedPositiveNegativeSampler,
    ) -> Result<(Proposals, RpnLosses)> {
        let out = self.predict(features, padded_size)?;
        let targets = self.assign_targets_to_anchors(&out.anchors, gt_boxes)?;
        let samples = targets
            .iter()
            .map(|t| sampler.sample_tensor(&t.labels))
            .collect::<Result<Vec<_>>>()?;
        let losses = self.compute_loss_sampled(&out, &targets, gt_boxes, &samples)?;
        let proposals = self.training_proposals(&out, image_sizes)?;
        Ok((proposals, losses))
    }

    /// Proposals with the training top-n values (what [`Rpn::losses`] returns).
    pub fn training_proposals(
        &self,
        out: &RpnOutput,
        image_sizes: &[(usize, usize)],
    ) -> Result<Proposals> {
        self.filter_proposals(
            out,
            image_sizes,
            self.config.pre_nms_top_n_train,
            self.config.post_nms_top_n_train,
        )
    }
}

#[cfg(test)]
mod tests;
