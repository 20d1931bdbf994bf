//! Our CUDA convolution: cuDNN forward, backward-data and backward-filter, as a candle custom
//! op with its own backward (`cuda` feature only).
//!
//! Why not candle's CUDA conv: it runs a grouped conv as one conv per group plus a `cat`
//! (32 launches per ResNeXt block), computes dX with a direct `conv_transpose2d` kernel, and
//! its stride-2 backward fails when H and W have different parities (CANDLE_NOTES). Here the
//! group count is set on the cuDNN descriptor (one call for all groups), both gradients come
//! from cuDNN, dX is skipped for inputs that need none (frozen layers, the image), and the
//! algorithm of each direction is picked once per shape and cached with its descriptors
//! ([`plan`]); one workspace per device is reused. TF32 follows
//! [`crate::precision::allow_tf32`] at the call (on by default, as PyTorch's
//! `torch.backends.cudnn.allow_tf32`). Layout: NCHW in and out. f32 only.
mod plan;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::CudaView;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, Layout, Result, Shape, Tensor};

pub use plan::cached_plans;

/// Everything that fixes a convolution's descriptors (the key of its cached plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub tf32: bool,
}

impl ConvShape {
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
}

impl std::fmt::Display for ConvShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self;
        write!(
            f,
            "input [{}, {}, {}, {}], weight [{}, {}, {}, {}], stride {}, padding {}, groups {}, tf32 {}",
            s.n, s.c, s.h, s.w, s.cout, s.cg(), s.k, s.k, s.stride, s.pad, s.groups, s.tf32
        )
    }
}

/// `conv2d(x, weight, stride, padding, groups)` on CUDA f32 tensors through cuDNN.
///
/// # Shapes
/// `x: [N, Cin, H, W]`, `weight: [Cout, Cin / groups, k, k]` -> `[N, Cout, Ho, Wo]`
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (cout, cg, k, k2) = weight.dims4()?;
    if k != k2
        || groups == 0
        || !c.is_multiple_of(groups)
        || !cout.is_multiple_of(groups)
        || cg != c / groups
        || stride == 0
    {
        candle_core::bail!(
            "conv2d (cuDNN): input {:?}, weight {:?}, groups {groups}, stride {stride}: incompatible",
            x.dims(),
            weight.dims()
        )
    }
    if h + 2 * padding < k || w + 2 * padding < k {
        candle_core::bail!(
            "conv2d (cuDNN): input {h}x{w} with padding {padding} is smaller than the {k}x{k} kernel"
        )
    }
    let shape = ConvShape {
        n,
        c,
        h,
        w,
        cout,
        k,
        stride,
        pad: padding,
        groups,
        tf32: crate::precision::allow_tf32(),
    };
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, Forward { shape })
}

/// A contiguous f32 view of a storage from its layout's start.
fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    if !l.is_contiguous() {
        candle_core::bail!("conv2d (cuDNN): the {what} must be contiguous")
    }
    Ok(s.as_cuda_slice::<f32>()?.slice(l.start_offset()..))
}

fn not_on_cpu(name: &str) -> Result<(CpuStorage, Shape)> {
    candle_core::bail!("{name}: a CPU tensor reached the cuDNN convolution (use backbones::conv::conv2d, which dispatches by device)")
}

/// Inputs (x, w), output y.
struct Forward {
    shape: ConvShape,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "conv2d-cudnn"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        not_on_cpu(self.name())
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let s = &self.shape;
        let dev = s1.device().clone();
        let (x, w) = (view(s1, l1, "input")?, view(s2, l2, "weight")?);
        let mut y = dev.alloc_zeros::<f32>(s.n * s.cout * s.ho() * s.wo())?;
        plan::forward(&dev, s, &x, &w, &mut y)?;
        let shape = Shape::from((s.n, s.cout, s.ho(), s.wo()));
        Ok((CudaStorage::wrap_cuda_slice(y, dev), shape))
    }

    /// dW only when the weight needs it, dX only when the input needs it.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dw = match w.track_op() {
            true => Some(x.apply_op2_no_bwd(&grad, &BackwardFilter { shape: self.shape })?),
            false => None,
        };
        let dx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(w, &BackwardData { shape: self.shape })?),
            false => None,
        };
        Ok((dx, dw))
    }
}

/// Inputs (dy, w), output dx `[N, Cin, H, W]`.
struct BackwardData {
    shape: ConvShape,
}

impl CustomOp2 for BackwardData {
    fn name(&self) -> &'static str {
        "conv2d-cudnn-backward-data"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        not_on_cpu(self.name())
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let s = &self.shape;
        let dev = s1.device().clone();
        let (dy, w) = (view(s1, l1, "output gradient")?, view(s2, l2, "weight")?);
        let mut dx = dev.alloc_zeros::<f32>(s.n * s.c * s.h * s.w)?;
        plan::backward_data(&dev, s, &w, &dy, &mut dx)?;
        let shape = Shape::from((s.n, s.c, s.h, s.w));
        Ok((CudaStorage::wrap_cuda_slice(dx, dev), shape))
    }
}

/// Inputs (x, dy), output dw `[Cout, Cin / groups, k, k]`.
struct BackwardFilter {
    shape: ConvShape,
}

impl CustomOp2 for BackwardFilter {
    fn name(&self) -> &'static str {
        "conv2d-cudnn-backward-filter"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        not_on_cpu(self.name())
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let s = &self.shape;
        let dev = s1.device().clone();
        let (x, dy) = (view(s1, l1, "input")?, view(s2, l2, "output gradient")?);
        let mut dw = dev.alloc_zeros::<f32>(s.cout * s.cg() * s.k * s.k)?;
        plan::backward_filter(&dev, s, &x, &dy, &mut dw)?;
        let shape = Shape::from((s.cout, s.cg(), s.k, s.k));
        Ok((CudaStorage::wrap_cuda_slice(dw, dev), shape))
    }
}
