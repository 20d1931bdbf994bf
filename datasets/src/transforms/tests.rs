use super::*;

#[test]
fn short_side_goes_to_min_size_unless_long_side_exceeds_max() {
    assert_eq!(resized_size(480, 640, 800, 1333), (800, 1066));
    assert_eq!(resized_size(100, 1000, 800, 1333), (133, 1333));
    assert_eq!(resized_size(800, 800, 800, 1333), (800, 800));
}

/// torchvision truncates `side * (min_size / short)` in f64, which can land just below the
/// target: its own outputs for these shapes (checked with torchvision 0.29).
#[test]
fn short_side_can_truncate_to_799_as_in_torchvision() {
    assert_eq!(resized_size(161, 200, 800, 1333), (799, 993));
    assert_eq!(resized_size(334, 500, 800, 1333), (799, 1197));
    assert_eq!(resized_size(427, 640, 800, 1333), (800, 1199));
}

#[test]
fn same_size_resize_only_normalises() {
    let image = RgbImage::from_pixels(2, 1, vec![0, 128, 255, 10, 20, 30]).unwrap();
    let t = transform_image(&TransformConfig::default(), &image, &[], 1, false);
    assert_eq!(t.size, (1, 2));
    let expect = (128.0f32 / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1];
    assert_eq!(t.data[2], expect); // channel 1, pixel 0
}

#[test]
fn flip_mirrors_pixels_and_boxes() {
    let image = RgbImage::from_pixels(3, 1, vec![0, 0, 0, 100, 100, 100, 200, 200, 200]);
    let image = image.unwrap();
    let plain = transform_image(
        &TransformConfig::default(),
        &image,
        &[[0., 0., 1., 1.]],
        1,
        false,
    );
    let flipped = transform_image(
        &TransformConfig::default(),
        &image,
        &[[0., 0., 1., 1.]],
        1,
        true,
    );
    assert_eq!(plain.data[0], flipped.data[2]);
    assert_eq!(flipped.boxes, vec![[2., 0., 3., 1.]]);
}

#[test]
fn batch_pads_to_a_multiple_of_32_with_zeros() {
    let t = TransformedImage {
        data: vec![1.0; 3 * 33 * 2],
        size: (33, 2),
        original_size: (33, 2),
        boxes: vec![],
    };
    let (buf, (h, w)) = batch_images(&[t], 32);
    assert_eq!((h, w), (64, 32));
    assert_eq!(buf.iter().filter(|&&v| v == 1.0).count(), 3 * 33 * 2);
}
