//! The bottleneck block of ResNet/ResNeXt, as torchvision's `Bottleneck` (stride in the 3x3
//! conv), runnable in the three equivalent forms of the ResNeXt paper's Fig. 3.
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::conv::{Conv2d, ConvConfig, ConvInit};
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
/// shape changes, else identity.
#[derive(Debug, Clone)]
pub struct Bottleneck {
    conv1: Conv2d,
    bn1: FrozenBatchNorm2d,
    conv2: Conv2d,
    bn2: FrozenBatchNorm2d,
    conv3: Conv2d,
    bn3: FrozenBatchNorm2d,
    downsample: Option<(Conv2d, FrozenBatchNorm2d)>,
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
        let conv1 = Conv2d::load(vb.pp("conv1"), (cin, width, 1), one, false, init)?;
        let conv2_cfg = ConvConfig::new(stride, 1, groups);
        let conv2 = Conv2d::load(vb.pp("conv2"), (width, width, 3), conv2_cfg, false, init)?;
        let conv3 = Conv2d::load(vb.pp("conv3"), (width, cout, 1), one, false, init)?;
        let downsample = if stride != 1 || cin != cout {
            let cfg = ConvConfig::new(stride, 0, 1);
            let conv = Conv2d::load(vb.pp("downsample.0"), (cin, cout, 1), cfg, false, init)?;
            Some((
                conv,
                FrozenBatchNorm2d::new(cout, eps, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1,
            bn1: FrozenBatchNorm2d::new(width, eps, vb.pp("bn1"))?,
            conv2,
            bn2: FrozenBatchNorm2d::new(width, eps, vb.pp("bn2"))?,
            conv3,
            bn3: FrozenBatchNorm2d::new(cout, eps, vb.pp("bn3"))?,
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
        let y = match self.form {
            BlockForm::Grouped => self.forward_grouped(x)?,
            BlockForm::ConcatThenConv => self.bn3.forward(&self.forward_concat(x)?)?,
            BlockForm::SumOfPaths => self.bn3.forward(&self.forward_sum(x)?)?,
        }; // [N, Cout, Ho, Wo]
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_after(conv, x)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }

    /// bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) with conv2 grouped: form (c), each
    /// BN folded into its conv.
    fn forward_grouped(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn1.forward_after(&self.conv1, x)?.relu()?; // [N, width, H, W]
        let y = self.bn2.forward_after(&self.conv2, &y)?.relu()?; // [N, width, Ho, Wo]
        self.bn3.forward_after(&self.conv3, &y)
    }

    /// Path `g` up to its 3x3 output: `[N, d, Ho, Wo]` with `d = width / C`.
    fn path(&self, x: &Tensor, g: usize) -> Result<Tensor> {
        let d = self.conv2.weight().dim(0)? / self.groups;
        let conv1 = Conv2d::new(
            self.conv1.weight().narrow(0, g * d, d)?,
            None,
            self.conv1.config(),
        );
        let mut cfg = self.conv2.config();
        cfg.groups = 1;
        let conv2 = Conv2d::new(self.conv2.weight().narrow(0, g * d, d)?, None, cfg);
        let y = self
            .bn1
            .narrow(g * d, d)?
            .forward(&conv1.forward(x)?)?
            .relu()?; // [N, d, H, W]
        self.bn2
            .narrow(g * d, d)?
            .forward(&conv2.forward(&y)?)?
            .relu()
    }

    /// Form (b): concatenate the C paths, then the full 1x1 conv3.
    fn forward_concat(&self, x: &Tensor) -> Result<Tensor> {
        let paths = (0..self.groups)
            .map(|g| self.path(x, g))
            .collect::<Result<Vec<_>>>()?;
        self.conv3.forward(&Tensor::cat(&paths, 1)?) // [N, Cout, Ho, Wo]
    }

    /// Form (a): each path has its own slice of conv3 (`[Cout, d]`); the outputs are summed.
    fn forward_sum(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.conv2.weight().dim(0)? / self.groups;
        let mut sum: Option<Tensor> = None;
        for g in 0..self.groups {
            let w3 = self.conv3.weight().narrow(1, g * d, d)?.contiguous()?; // [Cout, d, 1, 1]
            let y = Conv2d::new(w3, None, self.conv3.config()).forward(&self.path(x, g)?)?;
            sum = Some(match sum {
                Some(s) => (s + y)?,
                None => y,
            });
        }
        Ok(sum.expect("a block has at least one group"))
    }
}
