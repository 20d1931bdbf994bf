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
//! `torch.backends.cudnn.allow_tf32`). Layout: NCHW in and out. f32, or bf16 (`--precision
//! bf16`: bf16 tensors and gradients, f32 accumulation).
mod plan;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::cuda_backend::CudaDevice;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use half::bf16;
use plan::Element;

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
    /// bf16 tensors (else f32).
    pub bf16: bool,
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
            "input [{}, {}, {}, {}], weight [{}, {}, {}, {}], stride {}, padding {}, groups {}, {}",
            s.n,
            s.c,
            s.h,
            s.w,
            s.cout,
            s.cg(),
            s.k,
            s.k,
            s.stride,
            s.pad,
            s.groups,
            match (s.bf16, s.tf32) {
                (true, _) => "bf16",
                (false, true) => "tf32",
                (false, false) => "fp32",
            }
        )
    }
}

/// `conv2d(x, weight, stride, padding, groups)` on CUDA f32 or bf16 tensors (both the same)
/// through cuDNN.
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
    let bf16 = match (x.dtype(), weight.dtype()) {
        (DType::F32, DType::F32) => false,
        (DType::BF16, DType::BF16) => true,
        (a, b) => candle_core::bail!(
            "conv2d (cuDNN): input {a:?} and weight {b:?}: both must be f32 or both bf16"
        ),
    };
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
        bf16,
    };
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, Forward { shape })
}

/// A contiguous view of a storage from its layout's start.
fn view<'a, T: Element>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    if !l.is_contiguous() {
        candle_core::bail!("conv2d (cuDNN): the {what} must be contiguous")
    }
    Ok(s.as_cuda_slice::<T>()?.slice(l.start_offset()..))
}

/// An input storage of a cuDNN call, with its layout and what it is (for errors).
type Operand<'a> = (&'a CudaStorage, &'a Layout, &'static str);

/// One of the three cuDNN calls on two input storages, in the element type of `shape`: views
/// of both, an output of `len` zeros, `run` fills it.
fn launch(
    shape: &ConvShape,
    a: Operand,
    b: Operand,
    len: usize,
    run: Launch,
) -> Result<CudaStorage> {
    match shape.bf16 {
        false => launch_typed::<f32>(shape, a, b, len, run),
        true => launch_typed::<bf16>(shape, a, b, len, run),
    }
}

fn launch_typed<T: Element>(
    shape: &ConvShape,
    (s1, l1, what1): Operand,
    (s2, l2, what2): Operand,
    len: usize,
    run: Launch,
) -> Result<CudaStorage> {
    let dev = s1.device().clone();
    let (a, b) = (view::<T>(s1, l1, what1)?, view::<T>(s2, l2, what2)?);
    let mut out: CudaSlice<T> = dev.alloc_zeros::<T>(len)?;
    let f: fn(&CudaDevice, &ConvShape, &CudaView<T>, &CudaView<T>, &mut CudaSlice<T>) -> _ =
        match run {
            Launch::Forward => plan::forward::<T>,
            Launch::BackwardData => plan::backward_data::<T>,
            Launch::BackwardFilter => plan::backward_filter::<T>,
        };
    f(&dev, shape, &a, &b, &mut out)?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// Which cuDNN call [`launch`] makes (its two inputs in this order).
#[derive(Clone, Copy)]
enum Launch {
    /// (x, w) -> y
    Forward,
    /// (w, dy) -> dx
    BackwardData,
    /// (x, dy) -> dw
    BackwardFilter,
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
        let len = s.n * s.cout * s.ho() * s.wo();
        let (x, w) = ((s1, l1, "input"), (s2, l2, "weight"));
        let y = launch(s, x, w, len, Launch::Forward)?;
        Ok((y, Shape::from((s.n, s.cout, s.ho(), s.wo()))))
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
        let (dy, w) = ((s1, l1, "output gradient"), (s2, l2, "weight"));
        let dx = launch(s, w, dy, s.n * s.c * s.h * s.w, Launch::BackwardData)?;
        Ok((dx, Shape::from((s.n, s.c, s.h, s.w))))
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
        let (x, dy) = ((s1, l1, "input"), (s2, l2, "output gradient"));
        let dw = launch(
            s,
            x,
            dy,
            s.cout * s.cg() * s.k * s.k,
            Launch::BackwardFilter,
        )?;
        Ok((dw, Shape::from((s.cout, s.cg(), s.k, s.k))))
    }
}
