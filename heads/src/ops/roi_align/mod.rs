//! RoIAlign (Mask R-CNN, He et al. 2017) with torchvision's semantics, forward and backward.
//!
//! Each output bin averages `grid_h x grid_w` bilinear samples taken at the centres of a
//! regular grid inside the bin; `sampling_ratio > 0` fixes the grid, `<= 0` makes it adaptive
//! (`ceil(roi_size / output_size)` per RoI). With `aligned = true` the box corners are shifted
//! by half a pixel (`x * spatial_scale - 0.5`), so that a pixel's continuous coordinate `[i,
//! i + 1)` maps to the sample grid whose centre is at `i + 0.5` (detectron2's "half-pixel"
//! note); with `aligned = false` (torchvision's default, and what Faster R-CNN was trained
//! with) there is no shift and RoIs smaller than one pixel are stretched to one pixel.
//! Samples more than one pixel outside the map contribute zero; samples in the border pixel
//! are clamped to it.
//!
//! Autograd: the forward is a `CustomOp2(features, rois)` whose `bwd` applies a second op
//! (`RoiAlignBackward`) with `apply_op2_no_bwd`, giving the gradient w.r.t. the features
//! (none w.r.t. the RoIs, as in torchvision).

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::cpu_slice;
use super::error::{check_dtype, check_same_device, check_shape, OpsError};

const OP: &str = "roi_align";

/// What every kernel needs to know besides the tensors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub pooled_h: usize,
    pub pooled_w: usize,
    /// f32 as torchvision's kernels use it (`const T& spatial_scale`).
    pub spatial_scale: f32,
    pub sampling_ratio: i64,
    pub aligned: bool,
}

/// `[N, C, H, W]` of the features.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

/// Pools every RoI of `rois` from its image of `input` into an `output_size` grid of bins.
///
/// `rois[k] = (batch_index, x1, y1, x2, y2)` in input-image coordinates; `spatial_scale`
/// maps them onto the feature map (e.g. 1/4 for FPN's P2). Differentiable w.r.t. `input`.
///
/// # Shapes
/// `input [N, C, H, W]` f32, `rois [K, 5]` f32 → `[K, C, output_size.0, output_size.1]`
pub fn roi_align(
    input: &Tensor,
    rois: &Tensor,
    output_size: (usize, usize),
    spatial_scale: f64,
    sampling_ratio: i64,
    aligned: bool,
) -> Result<Tensor> {
    check_same_device(OP, &[("input", input), ("rois", rois)])?;
    check_shape(OP, "input", input, &[None, None, None, None])?;
    check_shape(OP, "rois", rois, &[None, Some(5)])?;
    check_dtype(OP, "input", input, &[DType::F32], "f32")?;
    check_dtype(OP, "rois", rois, &[DType::F32], "f32")?;
    if output_size.0 == 0 || output_size.1 == 0 {
        return Err(OpsError::Invalid {
            op: OP,
            arg: "output_size",
            message: format!("must be at least (1, 1), got {output_size:?}"),
        }
        .into());
    }
    if !(spatial_scale.is_finite() && spatial_scale > 0.0) {
        return Err(OpsError::Invalid {
            op: OP,
            arg: "spatial_scale",
            message: format!("must be finite and > 0, got {spatial_scale}"),
        }
        .into());
    }
    let (n, c, h, w) = input.dims4()?;
    let op = RoiAlign {
        params: Params {
            pooled_h: output_size.0,
            pooled_w: output_size.1,
            spatial_scale: spatial_scale as f32,
            sampling_ratio,
            aligned,
        },
        dims: Dims { n, c, h, w },
    };
    input.contiguous()?.apply_op2(&rois.contiguous()?, op)
}

/// Forward op: `(features, rois) -> pooled`.
struct RoiAlign {
    params: Params,
    dims: Dims,
}

impl CustomOp2 for RoiAlign {
    fn name(&self) -> &'static str {
        "roi_align"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let input = cpu_slice::<f32>(OP, s1, l1)?;
        let rois = cpu_slice::<f32>(OP, s2, l2)?;
        let level = cpu::Level {
            data: input,
            dims: self.dims,
            params: self.params,
        };
        let out = cpu::forward(&[level], &cpu::single_level(rois))?;
        let shape = Shape::from((
            rois.len() / 5,
            self.dims.c,
            self.params.pooled_h,
            self.params.pooled_w,
        ));
        Ok((CpuStorage::F32(out), shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let k = l2.shape().dims()[0];
        let out = cuda::forward(s1, l1, s2, l2, k, self.dims, self.params)?;
        Ok((
            out,
            Shape::from((k, self.dims.c, self.params.pooled_h, self.params.pooled_w)),
        ))
    }

    fn bwd(
        &self,
        _input: &Tensor,
        rois: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let back = RoiAlignBackward {
            params: self.params,
            dims: self.dims,
        };
        let grad_input = grad_res.contiguous()?.apply_op2_no_bwd(rois, &back)?;
        Ok((Some(grad_input), None))
    }
}

/// Backward op: `(grad_pooled, rois) -> grad_features`; recorded with `_no_bwd` (no
/// second-order gradients).
struct RoiAlignBackward {
    params: Params,
    dims: Dims,
}

impl CustomOp2 for RoiAlignBackward {
    fn name(&self) -> &'static str {
        "roi_align_backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let grad = cpu_slice::<f32>("roi_align_backward", s1, l1)?;
        let rois = cpu_slice::<f32>("roi_align_backward", s2, l2)?;
        let rois = cpu::single_level(rois);
        let out = cpu::backward(grad, &rois, 0, self.dims, self.params)?;
        let Dims { n, c, h, w } = self.dims;
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let k = l2.shape().dims()[0];
        let out = cuda::backward(s1, l1, s2, l2, k, self.dims, self.params)?;
        let Dims { n, c, h, w } = self.dims;
        Ok((out, Shape::from((n, c, h, w))))
    }
}
