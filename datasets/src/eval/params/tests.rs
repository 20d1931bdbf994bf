use super::*;

#[test]
fn thresholds_are_the_linspace_doubles() {
    // numpy: start + i * ((stop - start) / (num - 1)), the last set to stop.
    let step = (0.95 - 0.5) / 9.0;
    for (i, &t) in IOU_THRESHOLDS.iter().enumerate().take(9) {
        assert_eq!(t, i as f64 * step + 0.5, "threshold {i}");
    }
    assert_eq!(recall_threshold(100), 1.0);
    assert_eq!(recall_threshold(35), 0.35000000000000003);
}
