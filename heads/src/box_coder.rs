//! Box regression encoding (torchvision's `BoxCoder`).
//!
//! A box is encoded relative to a reference box (anchor or proposal) of width `w`, height `h`
//! and centre `(cx, cy)` as
//! `(wx * (gx - cx) / w, wy * (gy - cy) / h, ww * ln(gw / w), wh * ln(gh / h))`.
//! The RPN uses weights (1, 1, 1, 1), the box head (10, 10, 5, 5). Decoding clamps the size
//! deltas at `ln(1000 / 16)` so that `exp` cannot blow up a box more than 62.5 times (the
//! clamp comes from Detectron: the largest expected box, 1000 px, over the smallest anchor
//! stride, 16 px). Boxes are continuous xyxy: width = x2 - x1, no `+1`.

use candle_core::{DType, Result, Tensor, D};

/// `ln(1000 / 16)`: the largest decoded `dw`, `dh` (torchvision's `bbox_xform_clip`).
pub const BBOX_XFORM_CLIP: f64 = 4.135_166_556_742_356;

/// Encodes and decodes boxes relative to reference boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxCoder {
    /// Weights of (dx, dy, dw, dh).
    pub weights: [f32; 4],
    /// Upper clamp of the decoded dw, dh.
    pub bbox_xform_clip: f32,
}

impl BoxCoder {
    pub fn new(weights: [f32; 4]) -> Self {
        Self {
            weights,
            bbox_xform_clip: BBOX_XFORM_CLIP as f32,
        }
    }

    /// Regression targets that move each `reference` box onto its matched `gt` box.
    ///
    /// # Shapes
    /// - `gt`, `reference`: `[N, 4]` xyxy; returns `[N, 4]` (dx, dy, dw, dh).
    pub fn encode(&self, gt: &Tensor, reference: &Tensor) -> Result<Tensor> {
        let [wx, wy, ww, wh] = self.weights.map(f64::from);
        let (ex, ey, ew, eh) = centre_size(reference)?; // each [N, 1]
        let (gx, gy, gw, gh) = centre_size(&gt.to_dtype(reference.dtype())?)?;
        let dx = ((gx - &ex)? * wx)?.div(&ew)?;
        let dy = ((gy - &ey)? * wy)?.div(&eh)?;
        let dw = (gw.div(&ew)?.log()? * ww)?;
        let dh = (gh.div(&eh)?.log()? * wh)?;
        Tensor::cat(&[dx, dy, dw, dh], 1) // [N, 4]
    }

    /// Applies `K` sets of deltas per reference box.
    ///
    /// # Shapes
    /// - `rel_codes`: `[N, 4 * K]`, `boxes`: `[N, 4]`; returns `[N, K, 4]` xyxy.
    pub fn decode(&self, rel_codes: &Tensor, boxes: &Tensor) -> Result<Tensor> {
        let (n, k4) = rel_codes.dims2()?;
        if k4 % 4 != 0 || boxes.dims2()? != (n, 4) {
            candle_core::bail!(
                "BoxCoder::decode: rel_codes {:?} and boxes {:?} must be [N, 4K] and [N, 4]",
                rel_codes.shape(),
                boxes.shape()
            );
        }
        let codes = rel_codes.reshape((n, k4 / 4, 4))?; // [N, K, 4]
        let boxes = boxes.to_dtype(rel_codes.dtype())?;
        let (cx, cy, w, h) = centre_size(&boxes)?; // each [N, 1]
        let [wx, wy, ww, wh] = self.weights.map(f64::from);
        let clip = f64::from(self.bbox_xform_clip);
        let delta = |i: usize, weight: f64| codes.narrow(2, i, 1)?.squeeze(2)? / weight; // [N, K]
        let dx = delta(0, wx)?;
        let dy = delta(1, wy)?;
        let dw = delta(2, ww)?.clamp(f64::NEG_INFINITY, clip)?;
        let dh = delta(3, wh)?.clamp(f64::NEG_INFINITY, clip)?;
        let pcx = dx.broadcast_mul(&w)?.broadcast_add(&cx)?; // [N, K]
        let pcy = dy.broadcast_mul(&h)?.broadcast_add(&cy)?;
        let half_w = (dw.exp()?.broadcast_mul(&w)? * 0.5)?;
        let half_h = (dh.exp()?.broadcast_mul(&h)? * 0.5)?;
        Tensor::stack(
            &[
                (&pcx - &half_w)?,
                (&pcy - &half_h)?,
                (&pcx + &half_w)?,
                (&pcy + &half_h)?,
            ],
            D::Minus1,
        ) // [N, K, 4]
    }
}

/// `(cx, cy, w, h)` of xyxy boxes, each `[N, 1]`.
fn centre_size(boxes: &Tensor) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let col = |i: usize| boxes.narrow(1, i, 1);
    let (x1, y1, x2, y2) = (col(0)?, col(1)?, col(2)?, col(3)?);
    let w = (x2 - &x1)?;
    let h = (y2 - &y1)?;
    let cx = (x1 + (&w * 0.5)?)?;
    let cy = (y1 + (&h * 0.5)?)?;
    Ok((cx, cy, w, h))
}

/// Checks a boxes tensor is f32 `[N, 4]`; returns N.
pub(crate) fn check_boxes(what: &str, boxes: &Tensor) -> Result<usize> {
    match boxes.dims() {
        [n, 4] if boxes.dtype() == DType::F32 => Ok(*n),
        _ => candle_core::bail!(
            "{what}: expected f32 boxes [N, 4], got {:?} {:?}",
            boxes.dtype(),
            boxes.shape()
        ),
    }
}

#[cfg(test)]
mod tests;
