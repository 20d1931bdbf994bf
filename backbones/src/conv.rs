//! Every convolution of the backbones goes through here, so that a faster kernel or a better
//! backward is swapped in at one place.
//!
//! Dispatch (forward and backward stay differentiable on every path):
//! - 1x1, ungrouped: a matmul (`[Cout, Cin] x [N, Cin, H*W]`); stride 2 first takes every other
//!   row and column with `index_select`. Faster than candle's conv2d both ways
//!   (CANDLE_NOTES: 1.1-1.8x forward, 3-4x backward).
//! - anything else on CPU in f32: our op [`crate::conv_kernel::conv2d`] (direct, Winograd,
//!   shifted gemms or tiled im2col + one gemm per group into one output buffer, chosen by
//!   shape; parallel; with its own im2col backward).
//! - CUDA in f32 or bf16 (`cuda` feature), every shape including 1x1: our cuDNN op
//!   (`crate::conv_cudnn::conv2d`): groups on the descriptor, cuDNN forward and backward,
//!   algorithm cached per shape, TF32 per [`allow_tf32`].
//! - other devices and dtypes: candle's `conv2d`.
//!
//! Under [`crate::autocast`] (`--precision bf16`) [`Conv2d`] takes its operands in bf16 and
//! returns bf16 (on CPU: our f32 kernels on bf16-rounded operands).
//!
//! Known candle 0.11 backward gap (CANDLE_NOTES): a stride-2 conv backward fails with a shape
//! error when `(H + 2p - k) mod s != (W + 2p - k) mod s` (e.g. the 7x7/s2 stem on 8x9 inputs).
//! Our CPU and cuDNN ops have their own backward without that bug.

use std::sync::Arc;

use candle_core::{DType, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::conv_kernel::FilterCache;

/// Stride, zero padding and groups of a square-kernel convolution (dilation is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvConfig {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl ConvConfig {
    pub fn new(stride: usize, padding: usize, groups: usize) -> Self {
        Self {
            stride,
            padding,
            groups,
        }
    }
}

/// A 2-d convolution with an optional bias, weights `[Cout, Cin / groups, k, k]`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: ConvConfig,
    /// What the CPU inference kernel derives from the weight alone, kept between calls
    /// (shared by clones, which hold the same weight).
    filters: Arc<FilterCache>,
}

pub use crate::precision::{allow_tf32, set_allow_tf32};

/// How a conv's weights are initialised when the VarBuilder has none (torchvision's schemes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvInit {
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")` (torchvision ResNet).
    KaimingNormalFanOut,
    /// `kaiming_uniform_(a=1)` (torchvision FPN), bias 0.
    KaimingUniformA1,
}

impl Conv2d {
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: ConvConfig) -> Self {
        Self {
            weight,
            bias,
            config,
            filters: Arc::default(),
        }
    }

    /// This conv keeping its derived filters in `cache` (for a caller that builds a `Conv2d`
    /// per call around the same weight, as the RPN head does).
    pub fn with_filter_cache(mut self, cache: Arc<FilterCache>) -> Self {
        self.filters = cache;
        self
    }

    /// Reads `weight` (and `bias` when `bias`) from `vb`.
    pub fn load(
        vb: VarBuilder,
        (cin, cout, k): (usize, usize, usize),
        config: ConvConfig,
        bias: bool,
        init: ConvInit,
    ) -> Result<Self> {
        let init = match init {
            ConvInit::KaimingNormalFanOut => Init::Randn {
                mean: 0.0,
                stdev: (2.0 / (cout * k * k) as f64).sqrt(),
            },
            ConvInit::KaimingUniformA1 => {
                let bound = (3.0 / (cin / config.groups * k * k) as f64).sqrt();
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                }
            }
        };
        let weight = vb.get_with_hints((cout, cin / config.groups, k, k), "weight", init)?;
        let bias = match bias {
            true => Some(vb.get_with_hints(cout, "bias", Init::Const(0.0))?),
            false => None,
        };
        Ok(Self::new(weight, bias, config))
    }

    /// This conv with what the CPU inference kernel derives from its weight computed now
    /// ([`crate::conv_kernel::prepare_filters`]; nothing for weights that train or convs that
    /// derive nothing).
    pub fn prepared(self) -> Result<Self> {
        let c = self.config;
        crate::conv_kernel::prepare_filters(&self.filters, &self.weight, c.stride, c.groups)?;
        Ok(self)
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn config(&self) -> ConvConfig {
        self.config
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// # Shapes
    /// `x: [N, Cin, H, W]` -> `[N, Cout, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, false)
    }

    /// `relu?(self.forward(x) + residual)`. On CPU in f32 one kernel does it all, adding the
    /// bias, the residual and the ReLU to each output tile while it is in cache: when nothing
    /// needs a gradient (inference, frozen layers) [`crate::conv_kernel::conv2d_fused`], else
    /// its differentiable twin [`crate::conv_kernel::conv2d_trainable`] (one autograd node
    /// that keeps only its output). Other devices compose differentiable ops.
    ///
    /// # Shapes
    /// `x: [N, Cin, H, W]`, `residual: [N, Cout, Ho, Wo]` -> `[N, Cout, Ho, Wo]`
    pub fn forward_with(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        match crate::autocast::dtype() {
            Some(dt) => self.forward_autocast(x, residual, relu, dt),
            None => self.forward_plain(x, residual, relu),
        }
    }

    /// [`Conv2d::forward_with`] under autocast to `dt` (see [`crate::autocast`]): on CPU the
    /// f32 kernels on operands rounded to `dt`, the output rounded; elsewhere the conv in
    /// `dt`. The output is in `dt`.
    fn forward_autocast(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
        dt: DType,
    ) -> Result<Tensor> {
        use crate::autocast::rounded_f32;
        if x.device().is_cpu() {
            // A fresh weight each call: its own filter cache, so that it does not evict the
            // filters of `self.weight` prepared at load.
            let rounded = Conv2d::new(
                rounded_f32(&self.weight, dt)?,
                self.bias.as_ref().map(|b| rounded_f32(b, dt)).transpose()?,
                self.config,
            );
            let residual = residual.map(|r| rounded_f32(r, dt)).transpose()?;
            let y = rounded.forward_plain(&rounded_f32(x, dt)?, residual.as_ref(), relu)?;
            return y.to_dtype(dt);
        }
        let y = conv2d(&x.to_dtype(dt)?, &self.weight.to_dtype(dt)?, self.config)?;
        let bias = self.bias.as_ref().map(|b| b.to_dtype(dt)).transpose()?;
        let residual = residual.map(|r| r.to_dtype(dt)).transpose()?;
        add_residual_relu(add_channel_bias(y, bias.as_ref())?, residual.as_ref(), relu)
    }

    /// [`Conv2d::forward_with`] in the dtype of the operands.
    fn forward_plain(&self, x: &Tensor, residual: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        let inputs = [Some(x), Some(&self.weight), self.bias.as_ref(), residual];
        let c = self.config;
        if !inputs.iter().flatten().all(|t| is_cpu_f32(t)) {
            let y = add_channel_bias(conv2d(x, &self.weight, c)?, self.bias.as_ref())?;
            return add_residual_relu(y, residual, relu);
        }
        if inputs.iter().flatten().any(|t| t.track_op()) {
            return crate::conv_kernel::conv2d_trainable(
                x,
                &self.weight,
                None,
                self.bias.as_ref(),
                residual,
                relu,
                (c.stride, c.padding, c.groups),
            );
        }
        crate::conv_kernel::conv2d_fused(
            x,
            &self.weight,
            self.bias.as_ref(),
            residual,
            relu,
            c.stride,
            c.padding,
            c.groups,
            Some(&self.filters),
        )
    }
}

/// Whether `t` is an f32 tensor on the CPU (what our CPU conv ops take).
pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// `y + bias[c]` over `[N, C, H, W]` (`y` itself without a bias).
pub(crate) fn add_channel_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// `relu?(y + residual)`: the differentiable form of the fused conv epilogue's last two steps.
pub(crate) fn add_residual_relu(
    y: Tensor,
    residual: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let y = match residual {
        Some(r) => (y + r)?,
        None => y,
    };
    match relu {
        true => y.relu(),
        false => Ok(y),
    }
}

/// The convolution of `x` with `weight`, choosing the implementation (see the module docs).
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin / groups, k, k]` -> `[N, Cout, Ho, Wo]`
pub fn conv2d(x: &Tensor, weight: &Tensor, config: ConvConfig) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda()
        && matches!(x.dtype(), DType::F32 | DType::BF16)
        && weight.dtype() == x.dtype()
    {
        return crate::conv_cudnn::conv2d(x, weight, config.stride, config.padding, config.groups);
    }
    let (cout, cin_g, kh, kw) = weight.dims4()?;
    if kh == 1 && kw == 1 && config.groups == 1 && config.padding == 0 {
        return conv1x1(x, &weight.reshape((cout, cin_g))?, config.stride);
    }
    if x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 {
        return crate::conv_kernel::conv2d(x, weight, config.stride, config.padding, config.groups);
    }
    x.conv2d(weight, config.padding, config.stride, 1, config.groups)
}

/// Every `stride`-th row and column, starting at 0 (what a 1x1 stride-s conv or
/// `max_pool2d(kernel=1, stride=s)` reads). Differentiable.
///
/// # Shapes
/// `x: [N, C, H, W]` -> `[N, C, ceil(H / s), ceil(W / s)]`
pub fn subsample(x: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let (_, _, h, w) = x.dims4()?;
    // index_select needs a contiguous source (a narrowed view is not).
    let x = x.contiguous()?;
    let rows = Tensor::arange_step(0u32, h as u32, stride as u32, x.device())?;
    let cols = Tensor::arange_step(0u32, w as u32, stride as u32, x.device())?;
    x.index_select(&rows, 2)?.index_select(&cols, 3)
}

/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin]` -> `[N, Cout, ceil(H / s), ceil(W / s)]`
fn conv1x1(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    let x = subsample(x, stride)?;
    let (n, cin, h, w) = x.dims4()?;
    let cout = weight.dim(0)?;
    let x = x.reshape((n, cin, h * w))?; // [N, Cin, HW]
    let y = if n == 1 {
        weight.matmul(&x.squeeze(0)?)?.unsqueeze(0)? // [1, Cout, HW]
    } else {
        weight
            .broadcast_left(n)?
            .contiguous()?
            .matmul(&x.contiguous()?)? // [N, Cout, HW]
    };
    y.reshape((n, cout, h, w))
}
