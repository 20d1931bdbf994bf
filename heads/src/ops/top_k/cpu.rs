//! `top_k` on the CPU: select the `k` best (`select_nth_unstable_by`, linear time), then sort
//! only those.

use std::cmp::Ordering;

/// Indices of the `k` (<= `values.len()`) best values, best first.
pub(super) fn top_k(values: &[f32], k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    // Descending; NaN last; ties keep the lower index first.
    let cmp = |a: &u32, b: &u32| -> Ordering {
        let (x, y) = (values[*a as usize], values[*b as usize]);
        y.partial_cmp(&x)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
            .then(a.cmp(b))
    };
    if k < order.len() && k > 0 {
        order.select_nth_unstable_by(k - 1, cmp);
    }
    order.truncate(k);
    order.sort_unstable_by(cmp);
    order
}
