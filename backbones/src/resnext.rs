//! The ResNet/ResNeXt body as torchvision's `ResNet` builds it (no avgpool/fc): a stem
//! (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and four stages `layer1..layer4` whose outputs are
//! C2..C5 (strides 4, 8, 16, 32).
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::arch::ResNextConfig;
use crate::block::{BlockForm, BlockShape, Bottleneck};
use crate::conv::{subsample, Conv2d, ConvConfig, ConvInit};
use crate::conv_bn::ConvBn;
use crate::frozen_batch_norm::FrozenBatchNorm2d;

/// The ResNet/ResNeXt body; each stage is reachable on its own.
#[derive(Debug, Clone)]
pub struct ResNext {
    conv1: ConvBn,
    stages: [Vec<Bottleneck>; 4],
}

impl ResNext {
    /// Reads `conv1`, `bn1`, `layer{1..4}.{i}.*` from `vb` (torchvision's names).
    pub fn new(cfg: &ResNextConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(|e| e.into_candle())?;
        let stem_cfg = ConvConfig::new(2, 3, 1);
        let init = ConvInit::KaimingNormalFanOut;
        let conv1 = Conv2d::load(
            vb.pp("conv1"),
            (3, cfg.stem_channels, 7),
            stem_cfg,
            false,
            init,
        )?;
        let bn1 = FrozenBatchNorm2d::new(cfg.stem_channels, cfg.bn_eps, vb.pp("bn1"))?;
        let conv1 = ConvBn::new(conv1, bn1)?;
        let mut in_channels = cfg.stem_channels;
        let mut stages: [Vec<Bottleneck>; 4] = Default::default();
        for (s, stage) in stages.iter_mut().enumerate() {
            let vb = vb.pp(format!("layer{}", s + 1));
            for i in 0..cfg.layers[s] {
                let shape = BlockShape {
                    in_channels,
                    width: cfg.width(s),
                    out_channels: cfg.out_channels(s),
                    stride: if s > 0 && i == 0 { 2 } else { 1 },
                    groups: cfg.groups,
                };
                stage.push(Bottleneck::new(
                    shape,
                    cfg.block_form,
                    cfg.bn_eps,
                    vb.pp(i),
                )?);
                in_channels = shape.out_channels;
            }
        }
        Ok(Self { conv1, stages })
    }

    /// The same body with every block computed in `form`.
    pub fn with_block_form(&self, form: BlockForm) -> Self {
        let mut out = self.clone();
        for stage in out.stages.iter_mut() {
            for block in stage.iter_mut() {
                *block = block.with_form(form);
            }
        }
        out
    }

    /// The blocks of stage `stage` (0 = layer1 .. 3 = layer4).
    pub fn blocks(&self, stage: usize) -> &[Bottleneck] {
        &self.stages[stage]
    }

    /// conv1, bn1, relu, max_pool(3, stride 2, padding 1).
    ///
    /// # Shapes
    /// `x: [N, 3, H, W]` -> `[N, 64, H4, W4]` with `H2 = (H - 1) / 2 + 1`, `H4 = (H2 - 1) / 2 + 1`
    pub fn forward_stem(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv1.forward(x, None, true)?; // [N, 64, H2, W2]
        max_pool_3x3_s2_p1(&y)
    }

    /// Stage `stage` (0-based: 0 -> C2, ..., 3 -> C5) applied to the previous stage's output.
    ///
    /// # Shapes
    /// `x: [N, Cin, H, W]` -> `[N, 4 * planes, H', W']`, `H' = H` for stage 0 else `ceil(H / 2)`
    pub fn forward_stage(&self, stage: usize, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for block in &self.stages[stage] {
            y = block.forward(&y)?;
        }
        Ok(y)
    }

    /// All four stage outputs.
    ///
    /// # Shapes
    /// `x: [N, 3, H, W]` -> `[C2, C3, C4, C5]`, `Ci: [N, 4 * planes_i, ~H / 2^i, ~W / 2^i]`
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut y = self.forward_stem(x)?;
        let mut outs = Vec::with_capacity(4);
        for stage in 0..4 {
            y = self.forward_stage(stage, &y)?;
            outs.push(y.clone());
        }
        Ok(outs)
    }
}

/// `max_pool2d(kernel 3, stride 2, padding 1)` of a non-negative input (it follows a ReLU, so
/// zero padding equals torchvision's -inf padding: every window holds a real value >= 0).
/// candle's `max_pool2d` has no backward for kernel != stride, so a tensor that needs a
/// gradient takes the max of nine strided views instead.
///
/// # Shapes
/// `x: [N, C, H, W]` -> `[N, C, (H - 1) / 2 + 1, (W - 1) / 2 + 1]`
fn max_pool_3x3_s2_p1(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    // Pad to 2 * ho + 1 rows (1 before, the rest after) so the 3x3/2 windows cover exactly.
    let padded = x
        .pad_with_zeros(2, 1, 2 * ho - h)?
        .pad_with_zeros(3, 1, 2 * wo - w)?; // [N, C, 2ho+1, 2wo+1]
    if !x.track_op() {
        return padded.max_pool2d_with_stride(3, 2);
    }
    let mut out: Option<Tensor> = None;
    for dy in 0..3 {
        for dx in 0..3 {
            let view = padded
                .narrow(2, dy, 2 * ho - 1)?
                .narrow(3, dx, 2 * wo - 1)?;
            let view = subsample(&view, 2)?; // [N, C, ho, wo]
            out = Some(match out {
                Some(m) => m.maximum(&view)?,
                None => view,
            });
        }
    }
    Ok(out.expect("nine windows"))
}
