//! `FasterRcnn`: the whole detector, read top to bottom in [`FasterRcnn::detect`] and
//! [`FasterRcnn::losses`]: (images already transformed by the loader) → backbone + FPN →
//! RPN → RoI heads → boxes mapped back to each image's original size.
use backbones::conv::{Conv2d, ConvConfig};
use backbones::BackboneWithFpn;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use heads::roi_heads::{Detections, RoiHeads, Target};
use heads::rpn::{ConvFn, Rpn};
use heads::sampler::SampledIndices;

use crate::model::config::DetectorConfig;

/// Faster R-CNN with a ResNet/ResNeXt-FPN backbone, weights under torchvision's names
/// (`backbone.*`, `rpn.*`, `roi_heads.*`).
pub struct FasterRcnn {
    config: DetectorConfig,
    backbone: BackboneWithFpn,
    rpn: Rpn,
    roi_heads: RoiHeads,
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
}

impl Losses {
    /// Their sum, what the optimizer minimises (torchvision weighs all four by 1).
    pub fn total(&self) -> Result<Tensor> {
        self.rpn_objectness
            .add(&self.rpn_box_reg)?
            .add(&self.classifier)?
            .add(&self.box_reg)
    }

    /// `(name, value)` pairs in a fixed order, for logging.
    pub fn values(&self) -> Result<Vec<(&'static str, f64)>> {
        let scalar =
            |t: &Tensor| -> Result<f64> { t.to_dtype(candle_core::DType::F64)?.to_scalar() };
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
            rpn: Rpn::new(&config.rpn, channels, vb.pp("rpn"))?.with_conv(ConvFn::new(
                |x, w, b, padding, relu| {
                    let conv =
                        Conv2d::new(w.clone(), Some(b.clone()), ConvConfig::new(1, padding, 1));
                    conv.forward_with(x, None, relu)
                },
            )),
            roi_heads: RoiHeads::new(
                &config.roi_heads,
                channels,
                config.num_classes,
                vb.pp("roi_heads"),
            )?,
            config: config.clone(),
        })
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
        let padded = padded_size(images)?;
        let features = self.backbone.forward(images)?; // [P2..P6], each [B, F, h, w]
        let proposals = self.rpn.detect(&features, padded, image_sizes)?;
        let detections = self
            .roi_heads
            .detect(&features, &proposals.boxes, image_sizes)?;
        detections
            .into_iter()
            .zip(image_sizes.iter().zip(original_sizes))
            .map(|(d, (&resized, &original))| to_original_size(d, resized, original))
            .collect()
    }

    /// The four losses of a training batch. `seed` drives the RPN's and the box head's
    /// balanced samplers (derive it from the run seed and the iteration, so that a resumed
    /// run samples exactly as an uninterrupted one).
    ///
    /// # Shapes
    /// - `targets[i].boxes`: `[G_i, 4]` xyxy in resized pixels (`G_i = 0` is allowed).
    pub fn losses(
        &self,
        images: &Tensor,
        image_sizes: &[(usize, usize)],
        targets: &[Target],
        seed: u64,
    ) -> Result<Losses> {
        let padded = padded_size(images)?;
        let features = self.backbone.forward(images)?;
        let gt_boxes: Vec<Tensor> = targets.iter().map(|t| t.boxes.clone()).collect();
        let mut rpn_sampler = heads::sampler::BalancedPositiveNegativeSampler::new(
            self.config.rpn.batch_size_per_image,
            self.config.rpn.positive_fraction,
            seed,
        );
        let (proposals, rpn) =
            self.rpn
                .losses(&features, padded, image_sizes, &gt_boxes, &mut rpn_sampler)?;
        // A different stream for the second stage, still a function of `seed` alone.
        let mut roi_sampler = self.roi_heads.sampler(seed ^ 0x9e37_79b9_7f4a_7c15);
        let roi = self.roi_heads.losses(
            &features,
            &proposals.boxes,
            image_sizes,
            targets,
            &mut roi_sampler,
        )?;
        Ok(Losses {
            rpn_objectness: rpn.objectness,
            rpn_box_reg: rpn.box_reg,
            classifier: roi.classifier,
            box_reg: roi.box_reg,
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
    let scale = Tensor::new(&[rx, ry, rx, ry], d.boxes.device())?;
    Ok(Detections {
        boxes: d.boxes.broadcast_mul(&scale)?,
        ..d
    })
}
