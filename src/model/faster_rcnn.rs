//! `FasterRcnn`: the whole detector, read top to bottom in [`FasterRcnn::detect`] and
//! [`FasterRcnn::losses`]: (images already transformed by the loader) → backbone + FPN →
//! RPN → RoI heads → boxes mapped back to each image's original size.
use std::sync::Arc;

use backbones::conv::{Conv2d, ConvConfig};
use backbones::conv_kernel::FilterCache;
use backbones::BackboneWithFpn;
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use heads::roi_heads::{Detections, RoiHeads, Target};
use heads::rpn::{ConvFn, Rpn};
use heads::sampler::SampledIndices;

use crate::model::config::DetectorConfig;
use crate::profile::{Stage, StageClock};
use heads::ops::transfer;

/// Faster R-CNN with a ResNet/ResNeXt-FPN backbone, weights under torchvision's names
/// (`backbone.*`, `rpn.*`, `roi_heads.*`).
pub struct FasterRcnn {
    config: DetectorConfig,
    backbone: BackboneWithFpn,
    rpn: Rpn,
    roi_heads: RoiHeads,
    /// Mixed precision of the forward passes (`--precision bf16`): see
    /// [`FasterRcnn::set_autocast`].
    autocast: Option<DType>,
}

/// The four training losses (scalars), torchvision's names in the comments.
#[derive(Debug, Clone)]
pub struct Losses {
    /// `loss_objectness`
    pub rpn_objectness: Tensor,
    /// `loss_rpn_box_reg`
    pub rpn_box_reg: Tensor,
    /// `loss_classifier`
    pub classifier: Tensor,
    /// `loss_box_reg`
    pub box_reg: Tensor,
    /// What the losses are divided by: anchors sampled by the RPN (`rpn_objectness`,
    /// `rpn_box_reg`) and proposals sampled by the box head (`classifier`, `box_reg`), in
    /// this batch. Data-parallel ranks rescale by these to get the whole batch's losses.
    pub num_samples: NumSamples,
}

/// Sample counts of a batch's losses (see [`Losses::num_samples`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumSamples {
    pub rpn: usize,
    pub roi: usize,
}

impl Losses {
    /// Their sum, what the optimizer minimises (torchvision weighs all four by 1).
    pub fn total(&self) -> Result<Tensor> {
        self.rpn_objectness
            .add(&self.rpn_box_reg)?
            .add(&self.classifier)?
            .add(&self.box_reg)
    }

    /// The losses with each multiplied by its factor: `rpn` for the RPN's two, `roi` for the
    /// box head's two (a data-parallel rank's share of the whole batch's losses).
    pub fn scaled(&self, rpn: f64, roi: f64) -> Result<Losses> {
        Ok(Losses {
            rpn_objectness: self.rpn_objectness.affine(rpn, 0.0)?,
            rpn_box_reg: self.rpn_box_reg.affine(rpn, 0.0)?,
            classifier: self.classifier.affine(roi, 0.0)?,
            box_reg: self.box_reg.affine(roi, 0.0)?,
            num_samples: self.num_samples,
        })
    }

    /// `(name, value)` pairs in a fixed order, for logging: four scalar reads (a training
    /// step reads them only on logged iterations).
    pub fn values(&self) -> Result<Vec<(&'static str, f64)>> {
        let scalar = |t: &Tensor| -> Result<f64> {
            transfer::read_scalar("losses: components", &t.to_dtype(candle_core::DType::F64)?)
        };
        Ok(vec![
            ("loss_objectness", scalar(&self.rpn_objectness)?),
            ("loss_rpn_box_reg", scalar(&self.rpn_box_reg)?),
            ("loss_classifier", scalar(&self.classifier)?),
            ("loss_box_reg", scalar(&self.box_reg)?),
        ])
    }
}

impl FasterRcnn {
    /// Builds the detector from `vb` (the root of a torchvision detector state dict).
    pub fn new(config: &DetectorConfig, vb: VarBuilder) -> Result<Self> {
        let channels = config.backbone.fpn_channels;
        Ok(Self {
            backbone: BackboneWithFpn::new(&config.backbone, vb.pp("backbone"))?,
            // The RPN's convolutions through the backbone's: our CPU kernel (~1.5-2x candle's
            // conv2d) with the bias and ReLU fused (in training too: one autograd node that
            // keeps only its output), cuDNN on CUDA.
            // One filter cache for the head's 3x3 conv, the one conv here that derives
            // filters (its 1x1s leave the cache alone).
            rpn: Rpn::new(&config.rpn, channels, vb.pp("rpn"))?.with_conv(ConvFn::new({
                let filters = Arc::new(FilterCache::default());
                move |x, w, b, padding, relu| {
                    let conv =
                        Conv2d::new(w.clone(), Some(b.clone()), ConvConfig::new(1, padding, 1))
                            .with_filter_cache(filters.clone());
                    conv.forward_with(x, None, relu)
                }
            })),
            roi_heads: RoiHeads::new(
                &config.roi_heads,
                channels,
                config.num_classes,
                vb.pp("roi_heads"),
            )?,
            config: config.clone(),
            autocast: None,
        })
    }

    /// Runs every forward pass (training and inference) under [`backbones::autocast`] to
    /// `dtype`: convolutions and the box head's matmuls in bf16, RoIAlign, decoding, NMS and
    /// the losses in f32, the weights kept in f32 (`None`, the default: all f32).
    pub fn set_autocast(&mut self, dtype: Option<DType>) {
        self.autocast = dtype;
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Detections per image, boxes in original-image pixels.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` normalised and padded (the loader's batch);
    /// - `image_sizes[i]`: image `i`'s `(h, w)` after resizing; `original_sizes[i]`: before.
    pub fn detect(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        original_sizes: &[(usize, usize)],
    ) -> Result<Vec<Detections>> {
        self.detect_timed(images, image_sizes, original_sizes, &mut StageClock::off())
    }

    /// [`FasterRcnn::detect`], with a lap of `clock` after each stage (`--profile`).
    pub fn detect_timed(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        original_sizes: &[(usize, usize)],
        clock: &mut StageClock,
    ) -> Result<Vec<Detections>> {
        let _autocast = backbones::autocast::scope(self.autocast)?;
        let padded = padded_size(images)?;
        let features = self.backbone.forward(images)?; // [P2..P6], each [B, F, h, w]
        clock.lap(Stage::Backbone)?;
        let proposals = self.rpn.detect(&features, padded, image_sizes)?;
        clock.lap(Stage::Rpn)?;
        let detections = self
            .roi_heads
            .detect(&features, &proposals.boxes, image_sizes)?;
        let detections = detections
            .into_iter()
            .zip(image_sizes.iter().zip(original_sizes))
            .map(|(d, (&resized, &original))| to_original_size(d, resized, original))
            .collect();
        clock.lap(Stage::RoiHeads)?;
        detections
    }

    /// The four losses of a training batch. `seed` drives the RPN's and the box head's
    /// balanced samplers (derive it from the run seed and the iteration, so that a resumed
    /// run samples exactly as an uninterrupted one); each image samples from its own stream,
    /// keyed by its index in the whole batch: `first_image` is this batch's first (0, or a
    /// data-parallel rank's offset in the global batch).
    ///
    /// # Shapes
    /// - `targets[i].boxes`: `[G_i, 4]` xyxy in resized pixels (`G_i = 0` is allowed).
    pub fn losses(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        targets: &[Target],
        seed: u64,
        first_image: u64,
    ) -> Result<Losses> {
        let clock = &mut StageClock::off();
        self.losses_timed(images, image_sizes, targets, seed, first_image, clock)
    }

    /// [`FasterRcnn::losses`], with a lap of `clock` after each stage (`--profile`).
    pub fn losses_timed(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        targets: &[Target],
        seed: u64,
        first_image: u64,
        clock: &mut StageClock,
    ) -> Result<Losses> {
        let _autocast = backbones::autocast::scope(self.autocast)?;
        let padded = padded_size(images)?;
        let features = self.backbone.forward(images)?;
        clock.lap(Stage::Backbone)?;
        let gt_boxes: Vec<Tensor> = targets.iter().map(|t| t.boxes.clone()).collect();
        let mut rpn_sampler = heads::sampler::BalancedPositiveNegativeSampler::new(
            self.config.rpn.batch_size_per_image,
            self.config.rpn.positive_fraction,
            seed,
        )
        .starting_at_image(first_image);
        let (proposals, rpn) =
            self.rpn
                .losses(&features, padded, image_sizes, &gt_boxes, &mut rpn_sampler)?;
        clock.lap(Stage::Rpn)?;
        // A different stream for the second stage, still a function of `seed` alone.
        let mut roi_sampler = self
            .roi_heads
            .sampler(seed ^ 0x9e37_79b9_7f4a_7c15)
            .starting_at_image(first_image);
        let roi = self.roi_heads.losses(
            &features,
            &proposals.boxes,
            image_sizes,
            targets,
            &mut roi_sampler,
        )?;
        clock.lap(Stage::RoiHeads)?;
        Ok(Losses {
            rpn_objectness: rpn.objectness,
            rpn_box_reg: rpn.box_reg,
            classifier: roi.classifier,
            box_reg: roi.box_reg,
            num_samples: NumSamples {
                rpn: rpn.num_samples,
                roi: roi.num_samples,
            },
        })
    }

    /// [`FasterRcnn::losses`] with both samplers' choices given instead of drawn (e.g.
    /// torchvision's, from a parity fixture): `rpn_samples[i]` indexes image `i`'s anchors;
    /// `roi_samples` is called with each image's training proposals followed by its
    /// ground-truth boxes (`[K_i + G_i, 4]`) and returns the indices chosen among them (a
    /// caller holding another implementation's choices maps them onto these boxes: proposals
    /// with tied scores may come in either order). Each sampled index must carry the label our
    /// matching gives it (checked).
    pub fn losses_with_samples(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        targets: &[Target],
        rpn_samples: &[SampledIndices],
        roi_samples: impl FnOnce(&[Tensor]) -> Result<Vec<SampledIndices>>,
    ) -> Result<Losses> {
        let _autocast = backbones::autocast::scope(self.autocast)?;
        let features = self.backbone.forward(images)?;
        let gt_boxes: Vec<Tensor> = targets.iter().map(|t| t.boxes.clone()).collect();
        let out = self.rpn.predict(&features, padded_size(images)?)?;
        let anchor_targets = self
            .rpn
            .assign_targets_to_anchors(&out.anchors, &gt_boxes)?;
        let rpn = self
            .rpn
            .compute_loss(&out, &anchor_targets, &gt_boxes, rpn_samples)?;
        let proposals = self.rpn.training_proposals(&out, image_sizes)?;
        let with_gt = self.roi_heads.add_gt_proposals(&proposals.boxes, targets)?;
        let matched = self
            .roi_heads
            .assign_targets_to_proposals(&with_gt, targets)?;
        let roi_samples = roi_samples(&with_gt)?;
        let samples =
            self.roi_heads
                .select_training_samples(&with_gt, &matched, targets, &roi_samples)?;
        let roi = self
            .roi_heads
            .losses_on_samples(&features, &samples, image_sizes)?;
        Ok(Losses {
            rpn_objectness: rpn.objectness,
            rpn_box_reg: rpn.box_reg,
            classifier: roi.classifier,
            box_reg: roi.box_reg,
            num_samples: NumSamples {
                rpn: rpn.num_samples,
                roi: roi.num_samples,
            },
        })
    }
}

fn padded_size(images: &Tensor) -> Result<(usize, usize)> {
    let (_, _, h, w) = images.dims4()?;
    Ok((h, w))
}

/// torchvision's `transform.postprocess`: scale boxes by original / resized per axis (f32).
fn to_original_size(
    d: Detections,
    resized: (usize, usize),
    original: (usize, usize),
) -> Result<Detections> {
    let ry = original.0 as f32 / resized.0 as f32;
    let rx = original.1 as f32 / resized.1 as f32;
    let scale = transfer::upload(vec![rx, ry, rx, ry], 4, d.boxes.device())?;
    Ok(Detections {
        boxes: d.boxes.broadcast_mul(&scale)?,
        ..d
    })
}
