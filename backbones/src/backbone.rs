//! `BackboneWithFpn`: the ResNet/ResNeXt body and the FPN on top, as torchvision's
//! `BackboneWithFPN` (state-dict paths `body.*`, `fpn.*`).
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::arch::ResNextConfig;
use crate::error::BackboneError;
use crate::fpn::Fpn;
use crate::resnext::ResNext;

/// A detector backbone: body + FPN (torchvision `resnet_fpn_backbone`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneConfig {
    /// The ResNet/ResNeXt body.
    pub body: ResNextConfig,
    /// FPN channels (torchvision `out_channels`, 256).
    pub fpn_channels: usize,
    /// Stages that train, 0..=5 (torchvision `trainable_backbone_layers`, default 3); see
    /// `is_trainable`. The forward does not depend on it.
    pub trainable_layers: usize,
}

impl BackboneConfig {
    /// A named architecture (see `ResNextConfig::from_name`) with torchvision's FPN defaults.
    pub fn from_name(name: &str) -> std::result::Result<Self, BackboneError> {
        Ok(Self {
            body: ResNextConfig::from_name(name)?,
            fpn_channels: 256,
            trainable_layers: 3,
        })
    }
}

/// Body + FPN.
#[derive(Debug, Clone)]
pub struct BackboneWithFpn {
    pub body: ResNext,
    pub fpn: Fpn,
}

impl BackboneWithFpn {
    /// Reads `body.*` and `fpn.*` from `vb` (pass `vb.pp("backbone")` for a whole detector).
    pub fn new(config: &BackboneConfig, vb: VarBuilder) -> Result<Self> {
        if config.trainable_layers > 5 {
            return Err(
                BackboneError::InvalidTrainableLayers(config.trainable_layers).into_candle(),
            );
        }
        let body = ResNext::new(&config.body, vb.pp("body"))?;
        let in_channels: Vec<usize> = (0..4).map(|s| config.body.out_channels(s)).collect();
        let fpn = Fpn::new(&in_channels, config.fpn_channels, vb.pp("fpn"))?;
        Ok(Self { body, fpn })
    }

    /// # Shapes
    /// `images: [B, 3, H, W]` -> `[P2, P3, P4, P5, P6]`, `Pi: [B, F, ~H / 2^i, ~W / 2^i]`
    /// (exactly: each stride-2 step maps n to `(n - 1) / 2 + 1`).
    pub fn forward(&self, images: &Tensor) -> Result<Vec<Tensor>> {
        let features = self.body.forward(images)?; // [C2, C3, C4, C5]
        self.fpn.forward(&features)
    }
}
