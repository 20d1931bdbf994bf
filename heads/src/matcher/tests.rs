use super::*;

#[test]
fn thresholds_split_into_three_bands() -> Result<()> {
    let m = Matcher::new(0.7, 0.3, false)?;
    let got = m.match_host(&[0.8, 0.5, 0.1, 0.7, 0.3], 1, 5)?;
    assert_eq!(
        got,
        vec![
            0,
            BETWEEN_THRESHOLDS,
            BELOW_LOW_THRESHOLD,
            0,
            BETWEEN_THRESHOLDS
        ]
    );
    Ok(())
}

#[test]
fn picks_best_ground_truth_first_on_ties() -> Result<()> {
    let m = Matcher::new(0.5, 0.5, false)?;
    // rows = ground truths, columns = predictions
    let q = [0.6, 0.9, 0.2, /**/ 0.8, 0.9, 0.1];
    assert_eq!(m.match_host(&q, 2, 3)?, vec![1, 0, BELOW_LOW_THRESHOLD]);
    Ok(())
}

#[test]
fn low_quality_rule_keeps_each_ground_truths_best_predictions() -> Result<()> {
    let m = Matcher::new(0.7, 0.3, true)?;
    // gt 0's best IoU is 0.4, at predictions 0 and 2 (a tie: both kept); gt 1's best is
    // 0.5 at prediction 1. Prediction 3 is nobody's best and stays background.
    let q = [0.4, 0.1, 0.4, 0.2, /**/ 0.0, 0.5, 0.0, 0.1];
    let got = m.match_host(&q, 2, 4)?;
    assert_eq!(got, vec![0, 1, 0, BELOW_LOW_THRESHOLD]);
    // Without the rule nothing reaches 0.7.
    let strict = Matcher::new(0.7, 0.3, false)?.match_host(&q, 2, 4)?;
    assert_eq!(
        strict,
        vec![
            BETWEEN_THRESHOLDS,
            BETWEEN_THRESHOLDS,
            BETWEEN_THRESHOLDS,
            BELOW_LOW_THRESHOLD
        ]
    );
    Ok(())
}

#[test]
fn low_quality_match_uses_the_predictions_own_best_ground_truth() -> Result<()> {
    let m = Matcher::new(0.7, 0.3, true)?;
    // Prediction 0 is gt 0's best (0.5) but overlaps gt 1 more (0.6): it is matched to gt 1.
    let q = [0.5, 0.1, /**/ 0.6, 0.9];
    assert_eq!(m.match_host(&q, 2, 2)?, vec![1, 1]);
    Ok(())
}

#[test]
fn empty_matrix_is_an_error() {
    let m = Matcher::new(0.5, 0.5, false).unwrap();
    assert!(m.match_host(&[], 0, 3).is_err());
    assert!(Matcher::new(0.3, 0.7, false).is_err());
}

/// `call` (tensor ops) against `match_host` (the reference) on one matrix.
fn same_on_tensors(m: &Matcher, q: &[f32], g: usize, n: usize) -> Result<()> {
    let t = Tensor::from_vec(q.to_vec(), (g, n), &candle_core::Device::Cpu)?;
    assert_eq!(
        m.call(&t)?.to_vec1::<i64>()?,
        m.match_host(q, g, n)?,
        "{q:?}"
    );
    Ok(())
}

#[test]
fn tensor_matching_equals_the_host_rule() -> Result<()> {
    let low_quality = Matcher::new(0.7, 0.3, true)?;
    let strict = Matcher::new(0.5, 0.5, false)?;
    for m in [&low_quality, &strict] {
        same_on_tensors(m, &[0.8, 0.5, 0.1, 0.7, 0.3], 1, 5)?;
        same_on_tensors(m, &[0.6, 0.9, 0.2, 0.8, 0.9, 0.1], 2, 3)?;
        same_on_tensors(m, &[0.4, 0.1, 0.4, 0.2, 0.0, 0.5, 0.0, 0.1], 2, 4)?;
        same_on_tensors(m, &[0.5, 0.1, 0.6, 0.9], 2, 2)?;
        // Quantised random IoUs: many ties between and within ground truths.
        let mut state = 99u64;
        let q: Vec<f32> = (0..5 * 300)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(7);
                ((state >> 33) % 11) as f32 / 10.0
            })
            .collect();
        same_on_tensors(m, &q, 5, 300)?;
    }
    let empty = Tensor::zeros((0, 3), DType::F32, &candle_core::Device::Cpu)?;
    assert!(strict.call(&empty).is_err());
    Ok(())
}
