//! Architecture descriptions: which blocks, how wide, by torchvision's names.
//!
//! A bottleneck block of stage `s` (planes `p_s` = 64, 128, 256, 512) has inner width
//! `width = floor(p_s * d / 64) * C` (torchvision's `int(planes * (width_per_group / 64.)) * groups`)
//! and output `4 * p_s` channels. ResNet-50 is ResNeXt-50 (1x64d).
use serde::{Deserialize, Serialize};

use crate::block::BlockForm;
use crate::error::BackboneError;

/// Output channels of a bottleneck block relative to its `planes` (torchvision `expansion`).
pub const EXPANSION: usize = 4;

/// The ResNet/ResNeXt body (stem + stages C2..C5), as torchvision's `ResNet(Bottleneck, ...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNextConfig {
    /// Blocks per stage layer1..layer4 (torchvision `layers`), e.g. [3, 4, 6, 3] for depth 50.
    pub layers: [usize; 4],
    /// Cardinality C (torchvision `groups`); 1 = plain ResNet.
    pub groups: usize,
    /// Bottleneck width d of one group in stage 1 (torchvision `width_per_group`); 64 = ResNet.
    pub width_per_group: usize,
    /// Channels of the stem conv (torchvision: 64, the initial `inplanes`).
    pub stem_channels: usize,
    /// `planes` of each stage (torchvision: 64, 128, 256, 512); stage outputs are 4x these.
    pub planes: [usize; 4],
    /// How the grouped 3x3 conv of each block is computed (paper Fig. 3); (c) by default.
    pub block_form: BlockForm,
    /// FrozenBatchNorm2d epsilon: 1e-5 (torchvision default), 0.0 for torchvision's COCO
    /// detection checkpoints (`overwrite_eps(model, 0.0)`).
    pub bn_eps: f64,
}

/// The named architectures (the general pattern `resnext{50|101|152}_{C}x{d}d` is accepted too).
pub const NAMED_ARCHITECTURES: [&str; 7] = [
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
];

fn layers_for_depth(depth: usize) -> Option<[usize; 4]> {
    match depth {
        50 => Some([3, 4, 6, 3]),
        101 => Some([3, 4, 23, 3]),
        152 => Some([3, 8, 36, 3]),
        _ => None,
    }
}

impl ResNextConfig {
    /// A full-size torchvision architecture with the given depth (50/101/152), C and d.
    pub fn new(depth: usize, groups: usize, width_per_group: usize) -> Result<Self, BackboneError> {
        let layers = layers_for_depth(depth).ok_or_else(|| unknown(&format!("depth {depth}")))?;
        if groups == 0 || width_per_group == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "cardinality and width must be positive, got {groups}x{width_per_group}d"
            )));
        }
        Ok(Self {
            layers,
            groups,
            width_per_group,
            stem_channels: 64,
            planes: [64, 128, 256, 512],
            block_form: BlockForm::Grouped,
            bn_eps: 1e-5,
        })
    }

    /// Parses `resnet{50|101|152}` or `resnext{50|101|152}_{C}x{d}d` (e.g. `resnext50_8x14d`;
    /// `resnext50_1x64d` is resnet50). Anything else is an error listing the valid names.
    pub fn from_name(name: &str) -> Result<Self, BackboneError> {
        let parsed = if let Some(depth) = name.strip_prefix("resnet") {
            depth.parse().ok().map(|d| (d, 1, 64))
        } else if let Some(rest) = name.strip_prefix("resnext") {
            parse_resnext(rest)
        } else {
            None
        };
        match parsed {
            Some((depth, c, d)) if layers_for_depth(depth).is_some() && c > 0 && d > 0 => {
                Self::new(depth, c, d)
            }
            _ => Err(unknown(name)),
        }
    }

    /// Inner width of the blocks of stage `stage` (0-based: 0 = layer1 / C2).
    pub fn width(&self, stage: usize) -> usize {
        self.planes[stage] * self.width_per_group / 64 * self.groups
    }

    /// Output channels of stage `stage` (0-based): C2..C5 = 256, 512, 1024, 2048 at full size.
    pub fn out_channels(&self, stage: usize) -> usize {
        self.planes[stage] * EXPANSION
    }

    /// Checks the widths divide into the groups.
    pub fn validate(&self) -> Result<(), BackboneError> {
        for stage in 0..4 {
            let width = self.width(stage);
            if width == 0 || !width.is_multiple_of(self.groups) {
                return Err(BackboneError::InvalidConfig(format!(
                    "stage {} width {width} is not a positive multiple of groups {}",
                    stage + 1,
                    self.groups
                )));
            }
        }
        Ok(())
    }
}

/// `{depth}_{C}x{d}d` -> (depth, C, d).
fn parse_resnext(rest: &str) -> Option<(usize, usize, usize)> {
    let (depth, shape) = rest.split_once('_')?;
    let (c, d) = shape.strip_suffix('d')?.split_once('x')?;
    Some((depth.parse().ok()?, c.parse().ok()?, d.parse().ok()?))
}

fn unknown(name: &str) -> BackboneError {
    BackboneError::UnknownArchitecture {
        name: name.to_string(),
        valid: format!(
            "{}, or resnext{{50|101|152}}_{{C}}x{{d}}d (e.g. resnext50_8x14d)",
            NAMED_ARCHITECTURES.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests;
