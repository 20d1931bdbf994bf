use super::*;

#[test]
fn nearest_indices_match_pytorch_rule() {
    assert_eq!(nearest_indices(2, 4), vec![0, 0, 1, 1]);
    assert_eq!(nearest_indices(3, 5), vec![0, 0, 1, 1, 2]);
    assert_eq!(nearest_indices(4, 7), vec![0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(nearest_indices(3, 3), vec![0, 1, 2]);
}

/// The 2x path against the general one (two `index_select`s, candle's kernels and candle's
/// `index_add` backward), odd sizes and a batch included: the same pixels, and the same
/// gradient bit for bit (both sum each 2x2 block columns first).
#[test]
fn upsample_2x_matches_the_index_select_path_both_ways() {
    use candle_core::{Device, Var};
    for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 4, 25, 42)] {
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &Device::Cpu).unwrap();
        let r = Tensor::randn(0f32, 1.0, (n, c, 2 * h, 2 * w), &Device::Cpu).unwrap();
        let ours = upsample_nearest(x.as_tensor(), 2 * h, 2 * w).unwrap();
        let rows = Tensor::new(nearest_indices(h, 2 * h), &Device::Cpu).unwrap();
        let cols = Tensor::new(nearest_indices(w, 2 * w), &Device::Cpu).unwrap();
        let general = x
            .index_select(&rows, 2)
            .unwrap()
            .index_select(&cols, 3)
            .unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ours), flat(&general), "forward {:?}", (n, c, h, w));
        let grad_of = |y: Tensor| {
            let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            flat(g.get(x.as_tensor()).unwrap())
        };
        assert_eq!(
            grad_of(ours),
            grad_of(general),
            "backward {:?}",
            (n, c, h, w)
        );
    }
}
