//! The detector's configuration tree, mirroring the model tree. `Default` is torchvision's
//! `fasterrcnn_resnet50_fpn` with the backbone swapped for the named one; [`DetectorConfig::shapes`]
//! is the small model the built-in `shapes` quick start trains on a CPU.
use backbones::{BackboneConfig, BlockForm, ResNextConfig};
use datasets::transforms::TransformConfig;
use heads::anchors::AnchorGeneratorConfig;
use heads::roi_heads::RoiHeadsConfig;
use heads::rpn::RpnConfig;
use serde::{Deserialize, Serialize};

/// Name of the small ResNeXt the `shapes` quick start trains: not a torchvision architecture.
pub const SHAPES_BACKBONE: &str = "resnext_tiny_8x4d";

/// The whole detector: what `config.json` of a run holds and what a model file carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Backbone name as given on the command line (`resnext101_32x4d`, ...).
    pub backbone_name: String,
    /// ResNet/ResNeXt body and FPN (`backbone.body`, `backbone.fpn`).
    pub backbone: BackboneConfig,
    /// Region proposal network (`rpn`).
    pub rpn: RpnConfig,
    /// Box head (`roi_heads`).
    pub roi_heads: RoiHeadsConfig,
    /// Preprocessing (`transform`, torchvision's `GeneralizedRCNNTransform`).
    pub transform: TransformConfig,
    /// Output classes including background (torchvision `num_classes`; 91 for COCO checkpoints).
    pub num_classes: usize,
}

impl DetectorConfig {
    /// torchvision's Faster R-CNN FPN defaults around a named backbone.
    pub fn from_backbone_name(name: &str, num_classes: usize) -> anyhow::Result<Self> {
        if name == SHAPES_BACKBONE {
            return Ok(Self::shapes(num_classes));
        }
        let backbone = BackboneConfig::from_name(name)?;
        Ok(Self {
            backbone_name: name.to_string(),
            backbone,
            rpn: RpnConfig::default(),
            roi_heads: RoiHeadsConfig::default(),
            transform: TransformConfig::default(),
            num_classes,
        })
    }

    /// A small ResNeXt-FPN for the synthetic `shapes` dataset (160x160 images, objects of
    /// 24-72 px): one block per stage, cardinality 8 with 4-channel paths in the first stage
    /// (widths 32..256, outputs 64..512, stem 16), a 64-channel FPN, a 256-wide box head,
    /// anchors matched to the object sizes, and fewer proposals and samples. Every stage trains.
    pub fn shapes(num_classes: usize) -> Self {
        let body = ResNextConfig {
            layers: [1, 1, 1, 1],
            groups: 8,
            width_per_group: 16,
            stem_channels: 16,
            planes: [16, 32, 64, 128],
            block_form: BlockForm::Grouped,
            bn_eps: 1e-5,
        };
        let rpn = RpnConfig {
            anchors: AnchorGeneratorConfig {
                sizes: vec![vec![24.], vec![48.], vec![96.], vec![192.], vec![384.]],
                aspect_ratios: vec![vec![0.5, 1.0, 2.0]; 5],
            },
            pre_nms_top_n_train: 1000,
            post_nms_top_n_train: 500,
            pre_nms_top_n_test: 500,
            post_nms_top_n_test: 300,
            ..RpnConfig::default()
        };
        let roi_heads = RoiHeadsConfig {
            representation_size: 256,
            batch_size_per_image: 128,
            ..RoiHeadsConfig::default()
        };
        let transform = TransformConfig {
            min_size: vec![160],
            max_size: 160,
            ..TransformConfig::default()
        };
        Self {
            backbone_name: SHAPES_BACKBONE.to_string(),
            backbone: BackboneConfig {
                body,
                fpn_channels: 64,
                trainable_layers: 5,
            },
            rpn,
            roi_heads,
            transform,
            num_classes,
        }
    }
}
