use super::*;

#[test]
fn clips_to_the_image() {
    let b = bbox_xywh_to_xyxy_clipped([-5.0, 10.0, 20.0, 100.0], 640, 50);
    assert_eq!(b, [0.0, 10.0, 15.0, 50.0]);
}

#[test]
fn box_entirely_outside_collapses_to_zero_width() {
    let b = bbox_xywh_to_xyxy_clipped([700.0, 10.0, 20.0, 10.0], 640, 480);
    assert_eq!(b[2] - b[0], 0.0);
}
