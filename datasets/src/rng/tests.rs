use super::*;

#[test]
fn matches_the_published_splitmix64_sequence() {
    // First outputs of the reference C implementation for seed 1234567.
    let mut r = SplitMix64::new(1234567);
    assert_eq!(r.next_u64(), 6457827717110365317);
    assert_eq!(r.next_u64(), 3203168211198807973);
}

#[test]
fn shuffle_is_a_permutation() {
    let mut v: Vec<usize> = (0..100).collect();
    SplitMix64::new(3).shuffle(&mut v);
    assert_ne!(v, (0..100).collect::<Vec<_>>());
    v.sort();
    assert_eq!(v, (0..100).collect::<Vec<_>>());
}
