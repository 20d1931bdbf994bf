use super::*;

#[test]
fn top_n_is_taken_per_level_and_sorted() {
    let logits = [0.1, 0.9, 0.5, /* level 1 */ 3.0, -1.0];
    let (index, level) = top_n_per_level(&logits, &[3, 2], 2);
    assert_eq!(index, vec![1, 2, 3, 4]);
    assert_eq!(level, vec![0, 0, 1, 1]);
    let (index, _) = top_n_per_level(&logits, &[3, 2], 1);
    assert_eq!(index, vec![1, 3]);
}
