use super::*;

#[test]
fn nearest_indices_match_pytorch_rule() {
    assert_eq!(nearest_indices(2, 4), vec![0, 0, 1, 1]);
    assert_eq!(nearest_indices(3, 5), vec![0, 0, 1, 1, 2]);
    assert_eq!(nearest_indices(4, 7), vec![0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(nearest_indices(3, 3), vec![0, 1, 2]);
}
