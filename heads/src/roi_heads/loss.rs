//! The box-head losses (torchvision's `fastrcnn_loss`).

use super::RoiLosses;
use crate::losses::{cross_entropy, smooth_l1_loss_sum, SMOOTH_L1_BETA};
use crate::ops::{self, transfer};
use candle_core::op::CmpOp;
use candle_core::{DType, Result, Tensor};

/// Cross-entropy of the class logits over all sampled proposals, and smooth-L1 (beta 1/9)
/// of the foreground proposals' deltas *for their true class* against their targets, summed
/// and divided by the number of sampled proposals.
///
/// # Shapes
/// - `logits`: `[N, C]`, `deltas`: `[N, 4C]`, `labels`: `[N]` integer in `0..C`,
///   `regression_targets`: `[N, 4]`.
pub fn fastrcnn_loss(
    logits: &Tensor,
    deltas: &Tensor,
    labels: &Tensor,
    regression_targets: &Tensor,
) -> Result<RoiLosses> {
    let (n, c) = logits.dims2()?;
    if deltas.dims2()? != (n, 4 * c)
        || labels.dims1()? != n
        || regression_targets.dims2()? != (n, 4)
    {
        candle_core::bail!(
            "fastrcnn_loss: logits {:?}, deltas {:?}, labels {:?}, targets {:?} do not agree",
            logits.shape(),
            deltas.shape(),
            labels.shape(),
            regression_targets.shape()
        );
    }
    let device = labels.device();
    let labels_i64 = labels.to_dtype(DType::I64)?; // [N]
                                                   // One scalar read: does any label fall outside 0..C? (On error the labels are read for
                                                   // the message.)
    let outside = (ops::compare_scalar(&labels_i64, CmpOp::Lt, 0.0)?
        + ops::compare_scalar(&labels_i64, CmpOp::Ge, c as f64)?)?;
    if n > 0 && transfer::read_scalar::<u8>("fastrcnn_loss: label range", &outside.max(0)?)? > 0 {
        let values: Vec<i64> = transfer::read("fastrcnn_loss: bad label", &labels_i64)?;
        let bad = values.iter().find(|&&l| l < 0 || l as usize >= c);
        candle_core::bail!(
            "fastrcnn_loss: label {} outside 0..{c}",
            bad.copied().unwrap_or(-1)
        );
    }
    let classifier = cross_entropy(logits, labels)?;
    // Row (i * C + label_i) of deltas viewed as [N*C, 4], for each foreground i.
    let positives = ops::nonzero(&ops::compare_scalar(&labels_i64, CmpOp::Gt, 0.0)?)?; // [P]
    let box_loss = if positives.dim(0)? == 0 {
        Tensor::zeros((), deltas.dtype(), deltas.device())?
    } else {
        let positive_i64 = positives.to_dtype(DType::I64)?; // [P]
        let rows = positive_i64
            .broadcast_mul(&Tensor::full(c as i64, (), device)?)?
            .add(&labels_i64.index_select(&positives, 0)?)?; // [P]
        let pred = deltas.reshape((n * c, 4))?.index_select(&rows, 0)?; // [P, 4]
        let target = regression_targets
            .index_select(&positives, 0)?
            .to_dtype(pred.dtype())?; // [P, 4]
        smooth_l1_loss_sum(&pred, &target, SMOOTH_L1_BETA)?
    };
    Ok(RoiLosses {
        classifier,
        box_reg: (box_loss / n as f64)?,
        num_samples: n,
    })
}

#[cfg(test)]
mod tests;
