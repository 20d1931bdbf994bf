//! cuDNN state per (thread, device): the handle, one [`Plan`] per convolution shape (its
//! descriptors, and per direction the algorithm and workspace size, chosen once by cuDNN's
//! heuristics and then cached, like `torch.backends.cudnn.benchmark` caches per shape), and
//! one workspace buffer reused by every call (grown when a plan needs more; everything runs on
//! candle's one stream per device, so calls never overlap).
//!
//! Thread-local because a cuDNN handle is neither `Send` nor `Sync` (candle does the same).
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::cuda_backend::cudarc::cudnn::{
    sys, ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, Cudnn, CudnnError,
    FilterDescriptor, TensorDescriptor,
};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::cuda_backend::{CudaDevice, DeviceId};
use candle_core::Result;

use super::ConvShape;

type FwdAlgo = sys::cudnnConvolutionFwdAlgo_t;
type BwdDataAlgo = sys::cudnnConvolutionBwdDataAlgo_t;
type BwdFilterAlgo = sys::cudnnConvolutionBwdFilterAlgo_t;

/// Descriptors of one shape and the algorithms picked for it (each on first use).
struct Plan {
    conv: ConvDescriptor<f32>,
    x: TensorDescriptor<f32>,
    w: FilterDescriptor<f32>,
    y: TensorDescriptor<f32>,
    fwd: Option<(FwdAlgo, usize)>,
    bwd_data: Option<(BwdDataAlgo, usize)>,
    bwd_filter: Option<(BwdFilterAlgo, usize)>,
}

struct State {
    cudnn: Arc<Cudnn>,
    plans: HashMap<ConvShape, Plan>,
    workspace: Option<CudaSlice<u8>>,
}

thread_local! {
    static STATE: RefCell<HashMap<DeviceId, State>> = RefCell::new(HashMap::new());
}

/// A cuDNN failure as a candle error that names the step and the convolution.
pub(super) fn err(step: &str, s: &ConvShape, e: impl std::fmt::Debug) -> candle_core::Error {
    candle_core::Error::Msg(format!("cuDNN convolution {step} ({s}): {e:?}"))
}

fn new_plan(cudnn: &Arc<Cudnn>, s: &ConvShape) -> std::result::Result<Plan, CudnnError> {
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
    // As PyTorch: TF32 allowed -> the default math (cuDNN may use TF32 tensor cores for f32);
    // not allowed -> FMA only (full f32 products and sums).
    conv.set_math_type(match s.tf32 {
        true => sys::cudnnMathType_t::CUDNN_DEFAULT_MATH,
        false => sys::cudnnMathType_t::CUDNN_FMA_MATH,
    })?;
    let x = cudnn.create_4d_tensor::<f32>(NCHW, [i(s.n), i(s.c), i(s.h), i(s.w)])?;
    let w = cudnn.create_4d_filter::<f32>(NCHW, [i(s.cout), i(s.cg()), i(s.k), i(s.k)])?;
    let y = cudnn.create_4d_tensor::<f32>(NCHW, [i(s.n), i(s.cout), i(s.ho()), i(s.wo())])?;
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
fn with_plan<R>(
    dev: &CudaDevice,
    s: &ConvShape,
    f: impl FnOnce(&mut Plan, &mut Option<CudaSlice<u8>>) -> Result<R>,
) -> Result<R> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let state = match state.entry(dev.id()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let cudnn = Cudnn::new(dev.cuda_stream()).map_err(|e| err("handle", s, e))?;
                e.insert(State {
                    cudnn,
                    plans: HashMap::new(),
                    workspace: None,
                })
            }
        };
        let State {
            cudnn,
            plans,
            workspace,
        } = state;
        let plan = match plans.entry(*s) {
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
pub(super) fn forward(
    dev: &CudaDevice,
    s: &ConvShape,
    x: &CudaView<f32>,
    w: &CudaView<f32>,
    y: &mut CudaSlice<f32>,
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
        // Safety: x, w and y are contiguous f32 buffers of the descriptors' shapes (checked
        // by the caller).
        unsafe { op.launch(algo, ws, (1.0, 0.0), x, w, y) }.map_err(|e| err("forward", s, e))
    })
}

/// `dx = conv_backward_data(w, dy)`.
pub(super) fn backward_data(
    dev: &CudaDevice,
    s: &ConvShape,
    w: &CudaView<f32>,
    dy: &CudaView<f32>,
    dx: &mut CudaSlice<f32>,
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
        unsafe { op.launch(algo, ws, (1.0, 0.0), dx, w, dy) }
            .map_err(|e| err("backward data", s, e))
    })
}

/// `dw = conv_backward_filter(x, dy)`.
pub(super) fn backward_filter(
    dev: &CudaDevice,
    s: &ConvShape,
    x: &CudaView<f32>,
    dy: &CudaView<f32>,
    dw: &mut CudaSlice<f32>,
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
        unsafe { op.launch(algo, ws, (1.0, 0.0), x, dw, dy) }
            .map_err(|e| err("backward filter", s, e))
    })
}

/// How many shapes have a plan on this thread (all devices): for tests and `detect doctor`.
pub fn cached_plans() -> usize {
    STATE.with(|s| s.borrow().values().map(|st| st.plans.len()).sum())
}
