use super::*;

#[test]
fn f32_threshold_matches_f64_comparison() {
    for thr in [0.7, 0.5, 0.3, 1.0 / 3.0, 0.0, 1.0, -0.25] {
        let t = f32_threshold(thr);
        for x in [
            thr as f32,
            next_down(thr as f32),
            f32::from_bits((thr as f32).to_bits() + 1),
        ] {
            assert_eq!(x > t, (x as f64) > thr, "thr {thr} x {x}");
        }
    }
}

#[test]
fn nan_scores_sort_first_and_ties_by_index() {
    let order = score_order(&[0.5, f32::NAN, 0.9, 0.5, f32::NAN]);
    assert_eq!(order, vec![1, 4, 2, 0, 3]);
}
