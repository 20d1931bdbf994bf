use super::*;

#[test]
fn crowd_iou_divides_by_the_detection_area() {
    let d = [0.0, 0.0, 10.0, 10.0];
    let g = [5.0, 0.0, 100.0, 100.0];
    assert_eq!(box_iou(&d, &g, true), 0.5);
    assert_eq!(box_iou(&d, &g, false), 50.0 / (100.0 + 10000.0 - 50.0));
}

#[test]
fn touching_boxes_do_not_overlap() {
    assert_eq!(
        box_iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 1.0, 1.0], false),
        0.0
    );
}
