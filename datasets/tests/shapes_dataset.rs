//! The synthetic `shapes` dataset: deterministic from its seed, boxes tight around the drawn
//! pixels, presented as a COCO dataset.
use datasets::shapes::{render, render_background, shapes_coco, ShapesConfig, Split};
use datasets::transforms::resized_size;

fn small() -> ShapesConfig {
    ShapesConfig {
        num_train: 40,
        num_val: 10,
        ..ShapesConfig::default()
    }
}

#[test]
fn same_seed_gives_the_same_images_and_annotations() {
    let config = small();
    for index in [0, 7, 39] {
        assert_eq!(
            render(&config, Split::Train, index),
            render(&config, Split::Train, index)
        );
    }
    let a = shapes_coco(&config, Split::Train);
    let b = shapes_coco(&config, Split::Train);
    assert_eq!(a.images, b.images);
    assert_eq!(a.annotations, b.annotations);
}

#[test]
fn seed_and_split_change_the_images() {
    let config = small();
    let other_seed = ShapesConfig { seed: 1, ..small() };
    let (img, _) = render(&config, Split::Train, 3);
    assert_ne!(img, render(&other_seed, Split::Train, 3).0);
    assert_ne!(img, render(&config, Split::Val, 3).0);
    assert_ne!(img, render(&config, Split::Train, 4).0);
}

/// Independent of how the renderer computes boxes: the pixels that differ from the background
/// are exactly the object pixels; each box must contain only its object's pixels, touch them on
/// all four sides, and together the boxes must hold every changed pixel.
#[test]
fn boxes_are_tight_around_the_drawn_pixels() {
    let config = small();
    let size = config.image_size;
    for index in 0..config.num_train {
        let (image, objects) = render(&config, Split::Train, index);
        let background = render_background(&config, Split::Train, index);
        let changed: Vec<bool> = (0..size * size)
            .map(|p| image.pixels[p * 3..p * 3 + 3] != background.pixels[p * 3..p * 3 + 3])
            .collect();
        let mut in_a_box = vec![false; size * size];
        assert!(!objects.is_empty() && objects.len() <= config.max_objects);
        for object in &objects {
            let [x0, y0, x1, y1] = object.box_xyxy.map(|v| v as usize);
            assert!(
                x1 > x0 && y1 > y0 && x1 <= size && y1 <= size,
                "{index}: {object:?}"
            );
            let mut count = 0;
            let (mut top, mut bottom, mut left, mut right) = (false, false, false, false);
            for y in y0..y1 {
                for x in x0..x1 {
                    in_a_box[y * size + x] = true;
                    if changed[y * size + x] {
                        count += 1;
                        top |= y == y0;
                        bottom |= y == y1 - 1;
                        left |= x == x0;
                        right |= x == x1 - 1;
                    }
                }
            }
            assert!(
                top && bottom && left && right,
                "image {index}: box {object:?} not tight"
            );
            assert_eq!(
                count, object.pixel_count,
                "image {index}: overlapping objects?"
            );
            // Objects are at least 15% of the side (the triangle's apex row may be a pixel).
            assert!(
                x1 - x0 >= size * 15 / 100 - 1,
                "{index}: {object:?} too small"
            );
        }
        for p in 0..size * size {
            assert!(
                !changed[p] || in_a_box[p],
                "image {index}: pixel {p} drawn outside every box"
            );
        }
    }
}

#[test]
fn presents_itself_as_a_coco_dataset() {
    let config = small();
    let coco = shapes_coco(&config, Split::Val);
    assert_eq!(coco.images.len(), 10);
    let names: Vec<_> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    assert_eq!(names, [(1, "circle"), (2, "square"), (3, "triangle")]);
    for (i, info) in coco.images.iter().enumerate() {
        assert_eq!(info.id, i as u64 + 1);
        assert_eq!((info.width, info.height), (160, 160));
        let anns: Vec<_> = coco
            .annotations
            .iter()
            .filter(|a| a.image_id == info.id)
            .collect();
        let (_, objects) = render(&config, Split::Val, i);
        assert_eq!(anns.len(), objects.len());
        for (a, o) in anns.iter().zip(&objects) {
            let b = o.box_xyxy.map(|v| v as f64);
            assert_eq!(a.bbox, [b[0], b[1], b[2] - b[0], b[3] - b[1]]);
            assert_eq!(a.category_id, o.class as u64 + 1);
            assert!(!a.iscrowd);
        }
    }
    // All three classes occur.
    for id in 1..=3 {
        assert!(coco.annotations.iter().any(|a| a.category_id == id));
    }
}

#[test]
fn native_transform_keeps_the_image_size() {
    let config = ShapesConfig::default();
    let t = config.native_transform();
    let s = config.image_size;
    assert_eq!(resized_size(s, s, t.min_size[0], t.max_size), (s, s));
}
