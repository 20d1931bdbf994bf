//! The bottleneck block of ResNet/ResNeXt, as torchvision's `Bottleneck` (stride in the 3x3
//! conv), runnable in the three equivalent forms of the ResNeXt paper's Fig. 3.
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::conv::{Conv2d, ConvConfig, ConvInit};
use crate::conv_bn::ConvBn;
use crate::frozen_batch_norm::FrozenBatchNorm2d;

/// How the C transformations of a block are aggregated (paper Fig. 3). All three compute the
/// same function from the same weights; only the arithmetic order differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockForm {
    /// (a) C explicit paths (1x1 -> 3x3 -> 1x1 each), summed.
    SumOfPaths,
    /// (b) C paths of 1x1 -> 3x3, concatenated, then one 1x1.
    ConcatThenConv,
    /// (c) one 1x1, one grouped 3x3 conv, one 1x1 (the default; how torchvision runs it).
    #[default]
    Grouped,
}

/// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x))`, where conv2 is the
/// grouped 3x3 (carrying the stride) and shortcut is `downsample` (1x1 conv + BN) when the
/// shape changes, else identity. Each conv + BN pair is a [`ConvBn`] (folded at load time
/// when its weights are fixed).
#[derive(Debug, Clone)]
pub struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    downsample: Option<ConvBn>,
    groups: usize,
    form: BlockForm,
}

/// The sizes of one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    pub in_channels: usize,
    pub width: usize,
    pub out_channels: usize,
    pub stride: usize,
    pub groups: usize,
}

impl Bottleneck {
    /// Reads `conv1..3`, `bn1..3` and, when the shape changes, `downsample.{0,1}` from `vb`.
    pub fn new(shape: BlockShape, form: BlockForm, eps: f64, vb: VarBuilder) -> Result<Self> {
        let BlockShape {
            in_channels: cin,
            width,
            out_channels: cout,
            stride,
            groups,
        } = shape;
        let init = ConvInit::KaimingNormalFanOut;
        let one = ConvConfig::new(1, 0, 1);
        let conv_bn = |conv: &str, bn: &str, sizes: (usize, usize, usize), cfg| -> Result<ConvBn> {
            let c = Conv2d::load(vb.pp(conv), sizes, cfg, false, init)?;
            ConvBn::new(c, FrozenBatchNorm2d::new(sizes.1, eps, vb.pp(bn))?)
        };
        let conv1 = conv_bn("conv1", "bn1", (cin, width, 1), one)?;
        let conv2_cfg = ConvConfig::new(stride, 1, groups);
        let conv2 = conv_bn("conv2", "bn2", (width, width, 3), conv2_cfg)?;
        let conv3 = conv_bn("conv3", "bn3", (width, cout, 1), one)?;
        let downsample = if stride != 1 || cin != cout {
            let cfg = ConvConfig::new(stride, 0, 1);
            Some(conv_bn(
                "downsample.0",
                "downsample.1",
                (cin, cout, 1),
                cfg,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            conv2,
            conv3,
            downsample,
            groups,
            form,
        })
    }

    /// The same block computed in another form (same weights).
    pub fn with_form(&self, form: BlockForm) -> Self {
        Self {
            form,
            ..self.clone()
        }
    }

    /// # Shapes
    /// `x: [N, Cin, H, W]` -> `[N, Cout, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.form != BlockForm::Grouped && crate::autocast::dtype().is_some() {
            // Their per-path convs and BN run outside `ConvBn::forward`, which autocast covers.
            candle_core::bail!(
                "the {:?} block form has no mixed precision (autocast): use the grouped form",
                self.form
            )
        }
        let shortcut = match &self.downsample {
            Some(conv_bn) => conv_bn.forward(x, None, false)?,
            None => x.clone(),
        };
        match self.form {
            // Form (c), the residual add and the last ReLU inside conv3's kernel when fused.
            BlockForm::Grouped => {
                let y = self.conv1.forward(x, None, true)?; // [N, width, H, W]
                let y = self.conv2.forward(&y, None, true)?; // [N, width, Ho, Wo]
                self.conv3.forward(&y, Some(&shortcut), true) // [N, Cout, Ho, Wo]
            }
            BlockForm::ConcatThenConv => (self.forward_concat(x)? + shortcut)?.relu(),
            BlockForm::SumOfPaths => (self.forward_sum(x)? + shortcut)?.relu(),
        }
    }

    /// Path `g` up to its 3x3 output: `[N, d, Ho, Wo]` with `d = width / C`.
    fn path(&self, x: &Tensor, g: usize) -> Result<Tensor> {
        let d = self.conv2.weight().dim(0)? / self.groups;
        let y = self.conv1.narrow(g * d, d, 1)?.forward(x, None, true)?; // [N, d, H, W]
        self.conv2.narrow(g * d, d, 1)?.forward(&y, None, true)
    }

    /// Form (b): concatenate the C paths, then the full 1x1 conv3 and its BN.
    fn forward_concat(&self, x: &Tensor) -> Result<Tensor> {
        let paths = (0..self.groups)
            .map(|g| self.path(x, g))
            .collect::<Result<Vec<_>>>()?;
        let cat = Tensor::cat(&paths, 1)?; // [N, width, Ho, Wo]
        self.conv3
            .finish(&self.conv3.conv_with(&cat, self.conv3.weight())?) // [N, Cout, Ho, Wo]
    }

    /// Form (a): each path has its own slice of conv3 (`[Cout, d]`); the outputs are summed,
    /// then conv3's BN.
    fn forward_sum(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.conv2.weight().dim(0)? / self.groups;
        let mut sum: Option<Tensor> = None;
        for g in 0..self.groups {
            let w3 = self.conv3.weight().narrow(1, g * d, d)?.contiguous()?; // [Cout, d, 1, 1]
            let y = self.conv3.conv_with(&self.path(x, g)?, &w3)?;
            sum = Some(match sum {
                Some(s) => (s + y)?,
                None => y,
            });
        }
        self.conv3
            .finish(&sum.expect("a block has at least one group"))
    }
}
