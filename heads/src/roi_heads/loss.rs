//! The box-head losses (torchvision's `fastrcnn_loss`).

use super::RoiLosses;
use crate::losses::{cross_entropy, smooth_l1_loss_sum, SMOOTH_L1_BETA};
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
    let label_values = labels.to_dtype(DType::I64)?.to_vec1::<i64>()?;
    if let Some(bad) = label_values.iter().find(|&&l| l < 0 || l as usize >= c) {
        candle_core::bail!("fastrcnn_loss: label {bad} outside 0..{c}");
    }
    let classifier = cross_entropy(logits, labels)?;
    // Row (i * C + label_i) of deltas viewed as [N*C, 4], for each foreground i.
    let (rows, positives): (Vec<u32>, Vec<u32>) = label_values
        .iter()
        .enumerate()
        .filter(|(_, &l)| l > 0)
        .map(|(i, &l)| ((i * c) as u32 + l as u32, i as u32))
        .unzip();
    let box_loss = if rows.is_empty() {
        Tensor::zeros((), deltas.dtype(), deltas.device())?
    } else {
        let device = deltas.device();
        let pred = deltas
            .reshape((n * c, 4))?
            .index_select(&Tensor::new(rows.as_slice(), device)?, 0)?; // [P, 4]
        let target = regression_targets
            .index_select(&Tensor::new(positives.as_slice(), device)?, 0)?
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
