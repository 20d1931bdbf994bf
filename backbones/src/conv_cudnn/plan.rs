//! cuDNN state per (thread, device): the handle, one [`Plan`] per convolution shape (its
//! descriptors, and per direction the algorithm and workspace size, chosen once by cuDNN's
//! heuristics and then cached, like `torch.backends.cudnn.benchmark` caches per shape), and
//! one workspace buffer reused by every call (grown when a plan needs more; everything runs on
//! candle's one stream per device, so calls never overlap).
//!
//! Thread-local because a cuDNN handle is neither `Send` nor `Sync` (candle does the same).
//!
//! Two element types ([`Element`]): f32, and bf16 (`--precision bf16`: bf16 tensors, f32
//! accumulation, tensor-core math), each with its own plans.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::cuda_backend::cudarc::cudnn::{
    sys, ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, Cudnn, CudnnDataType,
    CudnnError, FilterDescriptor, TensorDescriptor,
};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, CudaDevice, DeviceId};
use candle_core::Result;
use half::bf16;

use super::ConvShape;

type FwdAlgo = sys::cudnnConvolutionFwdAlgo_t;
type BwdDataAlgo = sys::cudnnConvolutionBwdDataAlgo_t;
type BwdFilterAlgo = sys::cudnnConvolutionBwdFilterAlgo_t;

/// Descriptors of one shape and the algorithms picked for it (each on first use). The
/// convolution computes in f32 whatever the element type `T` of the tensors.
pub(super) struct Plan<T: CudnnDataType> {
    conv: ConvDescriptor<f32>,
    x: TensorDescriptor<T>,
    w: FilterDescriptor<T>,
    y: TensorDescriptor<T>,
    fwd: Option<(FwdAlgo, usize)>,
    bwd_data: Option<(BwdDataAlgo, usize)>,
    bwd_filter: Option<(BwdFilterAlgo, usize)>,
}

struct State {
    cudnn: Arc<Cudnn>,
    plans: Plans,
    workspace: Option<CudaSlice<u8>>,
}

/// The plans of each element type.
#[derive(Default)]
pub(super) struct Plans {
    f32: HashMap<ConvShape, Plan<f32>>,
    bf16: HashMap<ConvShape, Plan<bf16>>,
}

/// An element type the cuDNN convolution runs on.
pub(super) trait Element:
    CudnnDataType + CudaDType + DeviceRepr + ValidAsZeroBits + Copy + 'static
{
    const ONE: Self;
    const ZERO: Self;
    /// Tensor-core math (always for bf16, as PyTorch; for f32 only when TF32 is allowed).
    fn math(tf32: bool) -> sys::cudnnMathType_t;
    fn plans(plans: &mut Plans) -> &mut HashMap<ConvShape, Plan<Self>>;
}

impl Element for f32 {
    const ONE: Self = 1.0;
    const ZERO: Self = 0.0;
    // As PyTorch: TF32 allowed -> the default math (cuDNN may use TF32 tensor cores for f32);
    // not allowed -> FMA only (full f32 products and sums).
    fn math(tf32: bool) -> sys::cudnnMathType_t {
        match tf32 {
            true => sys::cudnnMathType_t::CUDNN_DEFAULT_MATH,
            false => sys::cudnnMathType_t::CUDNN_FMA_MATH,
        }
    }
    fn plans(plans: &mut Plans) -> &mut HashMap<ConvShape, Plan<Self>> {
        &mut plans.f32
    }
}

impl Element for bf16 {
    const ONE: Self = bf16::ONE;
    const ZERO: Self = bf16::ZERO;
    fn math(_tf32: bool) -> sys::cudnnMathType_t {
        sys::cudnnMathType_t::CUDNN_TENSOR_OP_MATH
    }
    fn plans(plans: &mut Plans) -> &mut HashMap<ConvShape, Plan<Self>> {
        &mut plans.bf16
    }
}

thread_local! {
    static STATE: RefCell<HashMap<DeviceId, State>> = RefCell::new(HashMap::new());
}

/// A cuDNN failure as a candle error that names the step and the convolution.
pub(super) fn err(step: &str, s: &ConvShape, e: impl std::fmt::Debug) -> candle_core::Error {
    candle_core::Error::Msg(format!("cuDNN convolution {step} ({s}): {e:?}"))
}

fn new_plan<T: Element>(
    cudnn: &Arc<Cudnn>,
    s: &ConvShape,
) -> std::result::Result<Plan<T>, CudnnError> {
    use sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW as NCHW;
    let i = |v: usize| v as i32;
    let (p, st) = (i(s.pad), i(s.stride));
    let mut conv = cudnn.create_conv2d::<f32>(
        [p, p],
        [st, st],
        [1, 1],
        sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
    )?;
    // All groups in one call: the group count lives on the descriptor.
    conv.set_group_count(i(s.groups))?;
    conv.set_math_type(T::math(s.tf32))?;
    let x = cudnn.create_4d_tensor::<T>(NCHW, [i(s.n), i(s.c), i(s.h), i(s.w)])?;
    let w = cudnn.create_4d_filter::<T>(NCHW, [i(s.cout), i(s.cg()), i(s.k), i(s.k)])?;
    let y = cudnn.create_4d_tensor::<T>(NCHW, [i(s.n), i(s.cout), i(s.ho()), i(s.wo())])?;
    Ok(Plan {
        conv,
        x,
        w,
        y,
        fwd: None,
        bwd_data: None,
        bwd_filter: None,
    })
}

/// Runs `f` with the plan of `s` on `dev` and the device's workspace buffer.
fn with_plan<T: Element, R>(
    dev: &CudaDevice,
    s: &ConvShape,
    f: impl FnOnce(&mut Plan<T>, &mut Option<CudaSlice<u8>>) -> Result<R>,
) -> Result<R> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let state = match state.entry(dev.id()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let cudnn = Cudnn::new(dev.cuda_stream()).map_err(|e| err("handle", s, e))?;
                e.insert(State {
                    cudnn,
                    plans: Plans::default(),
                    workspace: None,
                })
            }
        };
        let State {
            cudnn,
            plans,
            workspace,
        } = state;
        let plan = match T::plans(plans).entry(*s) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(new_plan(cudnn, s).map_err(|e| err("descriptors", s, e))?)
            }
        };
        f(plan, workspace)
    })
}

/// The workspace, grown to at least `bytes` (None when the algorithm needs none).
fn workspace<'a>(
    ws: &'a mut Option<CudaSlice<u8>>,
    dev: &CudaDevice,
    bytes: usize,
) -> Result<Option<&'a mut CudaSlice<u8>>> {
    if bytes == 0 {
        return Ok(None);
    }
    if ws.as_ref().is_none_or(|w| w.len() < bytes) {
        *ws = None; // free the old buffer before taking a larger one
        *ws = Some(dev.alloc_zeros::<u8>(bytes)?);
    }
    Ok(ws.as_mut())
}

/// `y = conv(x, w)`.
pub(super) fn forward<T: Element>(
    dev: &CudaDevice,
    s: &ConvShape,
    x: &CudaView<T>,
    w: &CudaView<T>,
    y: &mut CudaSlice<T>,
) -> Result<()> {
    with_plan(dev, s, |plan, ws| {
        if plan.fwd.is_none() {
            let op = ConvForward {
                conv: &plan.conv,
                x: &plan.x,
                w: &plan.w,
                y: &plan.y,
            };
            let algo = op
                .pick_algorithm()
                .map_err(|e| err("forward algorithm", s, e))?;
            let bytes = op
                .get_workspace_size(algo)
                .map_err(|e| err("forward workspace size", s, e))?;
            plan.fwd = Some((algo, bytes));
        }
        let (algo, bytes) = plan.fwd.expect("set above");
        let ws = workspace(ws, dev, bytes)?;
        let op = ConvForward {
            conv: &plan.conv,
            x: &plan.x,
            w: &plan.w,
            y: &plan.y,
        };
        // Safety: x, w and y are contiguous `T` buffers of the descriptors' shapes (checked
        // by the caller).
        unsafe { op.launch(algo, ws, (T::ONE, T::ZERO), x, w, y) }.map_err(|e| err("forward", s, e))
    })
}

/// `dx = conv_backward_data(w, dy)`.
pub(super) fn backward_data<T: Element>(
    dev: &CudaDevice,
    s: &ConvShape,
    w: &CudaView<T>,
    dy: &CudaView<T>,
    dx: &mut CudaSlice<T>,
) -> Result<()> {
    with_plan(dev, s, |plan, ws| {
        if plan.bwd_data.is_none() {
            let op = ConvBackwardData {
                conv: &plan.conv,
                dx: &plan.x,
                w: &plan.w,
                dy: &plan.y,
            };
            let algo = op
                .pick_algorithm()
                .map_err(|e| err("backward-data algorithm", s, e))?;
            let bytes = op
                .get_workspace_size(algo)
                .map_err(|e| err("backward-data workspace size", s, e))?;
            plan.bwd_data = Some((algo, bytes));
        }
        let (algo, bytes) = plan.bwd_data.expect("set above");
        let ws = workspace(ws, dev, bytes)?;
        let op = ConvBackwardData {
            conv: &plan.conv,
            dx: &plan.x,
            w: &plan.w,
            dy: &plan.y,
        };
        // Safety: as in `forward`.
        unsafe { op.launch(algo, ws, (T::ONE, T::ZERO), dx, w, dy) }
            .map_err(|e| err("backward data", s, e))
    })
}

/// `dw = conv_backward_filter(x, dy)`.
pub(super) fn backward_filter<T: Element>(
    dev: &CudaDevice,
    s: &ConvShape,
    x: &CudaView<T>,
    dy: &CudaView<T>,
    dw: &mut CudaSlice<T>,
) -> Result<()> {
    with_plan(dev, s, |plan, ws| {
        if plan.bwd_filter.is_none() {
            let op = ConvBackwardFilter {
                conv: &plan.conv,
                x: &plan.x,
                dw: &plan.w,
                dy: &plan.y,
            };
            let algo = op
                .pick_algorithm()
                .map_err(|e| err("backward-filter algorithm", s, e))?;
            let bytes = op
                .get_workspace_size(algo)
                .map_err(|e| err("backward-filter workspace size", s, e))?;
            plan.bwd_filter = Some((algo, bytes));
        }
        let (algo, bytes) = plan.bwd_filter.expect("set above");
        let ws = workspace(ws, dev, bytes)?;
        let op = ConvBackwardFilter {
            conv: &plan.conv,
            x: &plan.x,
            dw: &plan.w,
            dy: &plan.y,
        };
        // Safety: as in `forward`.
        unsafe { op.launch(algo, ws, (T::ONE, T::ZERO), x, dw, dy) }
            .map_err(|e| err("backward filter", s, e))
    })
}

/// How many shapes have a plan on this thread (all devices): for tests and `detect doctor`.
pub fn cached_plans() -> usize {
    STATE.with(|s| {
        let s = s.borrow();
        s.values()
            .map(|st| st.plans.f32.len() + st.plans.bf16.len())
            .sum()
    })
}
