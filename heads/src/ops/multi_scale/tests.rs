use super::*;

#[test]
fn canonical_box_maps_to_level_four() {
    // P2..P5: k_min = 2, k_max = 5; index = level - 2.
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 224.0, 224.0], 2, 5), Some(2));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 112.0, 112.0], 2, 5), Some(1));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 111.0, 112.0], 2, 5), Some(0));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 2000.0, 2000.0], 2, 5), Some(3));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 0.0, 0.0], 2, 5), Some(0));
    assert_eq!(map_level(&[0.0, 5.0, 0.0, 0.0, 10.0], 2, 5), None);
}

#[test]
fn scales_round_to_powers_of_two() {
    assert_eq!(infer_scale(200, 800), 0.25);
    assert_eq!(infer_scale(25, 800), 1.0 / 32.0);
    assert_eq!(infer_scale(13, 100), 0.125);
}
