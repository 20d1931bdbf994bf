//! Parameter and multiply-add counts, computed from the architecture alone (no tensors).
//!
//! Conventions (those of the ResNeXt paper and torchvision's model docs): FLOPs are
//! multiply-adds of the convolutions and the fc layer; BatchNorm, ReLU, pooling, the residual
//! and FPN top-down additions are not counted. Parameters are what torchvision's
//! `sum(p.numel() for p in model.parameters())` gives for a classification net with ordinary
//! BatchNorm: conv and fc weights, fc bias, BN weight and bias (running stats are buffers).
use crate::arch::ResNextConfig;

/// Parameters and multiply-adds of a network or part of one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Learnable parameters (as torchvision counts them).
    pub params: u64,
    /// Multiply-adds of the convolutions and linear layers.
    pub macs: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.params += other.params;
        self.macs += other.macs;
    }
}

/// Output size of a conv or pool along one axis (`floor((n + 2p - k) / s) + 1`).
pub fn conv_out(n: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (n + 2 * padding - kernel) / stride + 1
}

/// A conv (no bias) over an output map `out_hw`, followed by a BatchNorm.
fn conv_bn(cin: usize, cout: usize, k: usize, groups: usize, out_hw: (usize, usize)) -> Cost {
    let weights = (cout * cin / groups * k * k) as u64;
    Cost {
        params: weights + 2 * cout as u64,
        macs: weights * (out_hw.0 * out_hw.1) as u64,
    }
}

/// The body (stem + C2..C5) at `height x width`; returns its cost and the C2..C5 map sizes.
pub fn body_cost(cfg: &ResNextConfig, height: usize, width: usize) -> (Cost, [(usize, usize); 4]) {
    let mut cost = Cost::default();
    let stem = (conv_out(height, 7, 2, 3), conv_out(width, 7, 2, 3));
    cost.add(conv_bn(3, cfg.stem_channels, 7, 1, stem));
    let mut hw = (conv_out(stem.0, 3, 2, 1), conv_out(stem.1, 3, 2, 1)); // maxpool
    let mut inplanes = cfg.stem_channels;
    let mut sizes = [(0, 0); 4];
    for (stage, &blocks) in cfg.layers.iter().enumerate() {
        let (width_, out) = (cfg.width(stage), cfg.out_channels(stage));
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let out_hw = (conv_out(hw.0, 3, stride, 1), conv_out(hw.1, 3, stride, 1));
            cost.add(conv_bn(inplanes, width_, 1, 1, hw));
            cost.add(conv_bn(width_, width_, 3, cfg.groups, out_hw));
            cost.add(conv_bn(width_, out, 1, 1, out_hw));
            if stride != 1 || inplanes != out {
                cost.add(conv_bn(inplanes, out, 1, 1, out_hw));
            }
            inplanes = out;
            hw = out_hw;
        }
        sizes[stage] = hw;
    }
    (cost, sizes)
}

/// The ImageNet classifier: body + global pool + 1000-way fc, at `height x width`.
pub fn classification_cost(cfg: &ResNextConfig, height: usize, width: usize) -> Cost {
    let (mut cost, _) = body_cost(cfg, height, width);
    let features = cfg.out_channels(3) as u64;
    cost.add(Cost {
        params: features * 1000 + 1000,
        macs: features * 1000,
    });
    cost
}

/// Body + FPN (`fpn_channels` wide, 1x1 lateral and 3x3 output convs with bias; P6 is a
/// subsampling and costs nothing) at `height x width`.
pub fn backbone_fpn_cost(
    cfg: &ResNextConfig,
    fpn_channels: usize,
    height: usize,
    width: usize,
) -> Cost {
    let (mut cost, sizes) = body_cost(cfg, height, width);
    let f = fpn_channels as u64;
    for (stage, (h, w)) in sizes.iter().enumerate() {
        let area = (h * w) as u64;
        let lateral = cfg.out_channels(stage) as u64 * f;
        let output = f * f * 9;
        cost.add(Cost {
            params: lateral + output + 2 * f,
            macs: (lateral + output) * area,
        });
    }
    cost
}

#[cfg(test)]
mod tests;
