use super::*;

const GREY: Rgb<u8> = Rgb([128, 128, 128]);

fn detection(box_xyxy: [f32; 4], label: usize, score: f32) -> Detection {
    Detection {
        box_xyxy,
        score,
        label,
    }
}

fn grey_image(width: u32, height: u32) -> RgbImage {
    RgbImage::from_pixel(width, height, GREY)
}

/// Pixels in `[x1, x2) x [y1, y2)` that are not grey.
fn changed(image: &RgbImage, [x1, y1, x2, y2]: [u32; 4]) -> usize {
    (y1..y2)
        .flat_map(|y| (x1..x2).map(move |x| (x, y)))
        .filter(|&(x, y)| *image.get_pixel(x, y) != GREY)
        .count()
}

#[test]
fn outline_is_two_pixels_of_the_class_colour_inside_the_box() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([50.0, 80.0, 150.0, 180.0], 3, 0.93)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(3);
    for (x, y) in [
        (50, 120),
        (51, 120),
        (148, 120),
        (149, 120),
        (100, 178),
        (100, 179),
        (100, 80),
        (100, 81),
    ] {
        assert_eq!(*image.get_pixel(x, y), colour, "outline at ({x}, {y})");
    }
    for (x, y) in [
        (49, 120),
        (52, 120),
        (147, 120),
        (150, 120),
        (100, 177),
        (100, 180),
    ] {
        assert_eq!(
            *image.get_pixel(x, y),
            GREY,
            "outside the outline at ({x}, {y})"
        );
    }
    assert_eq!(
        changed(&image, [52, 82, 148, 178]),
        0,
        "the box's interior is untouched"
    );
}

#[test]
fn label_sits_on_top_of_the_box_with_readable_text() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([50.0, 80.0, 150.0, 180.0], 3, 0.93)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(3);
    let style = DrawStyle::for_image(200, 200);
    let expected_w = text_width(&embedded_font(), style.font_px, "car 0.93").ceil() as u32 + 6;
    // The label's row just above the box: background from x=50 for the label's width.
    let row = 79;
    let label_pixels: Vec<_> = (40..160)
        .filter(|&x| *image.get_pixel(x, row) != GREY)
        .collect();
    assert_eq!(label_pixels.first(), Some(&50));
    assert_eq!(
        label_pixels.len() as u32,
        expected_w,
        "label width = text + padding"
    );
    // Text: a band of rows inside the label holds pixels far from the background colour.
    let text_pixels = (62..79)
        .flat_map(|y| (50..50 + expected_w).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = image.get_pixel(x, y).0;
            p.iter()
                .zip(colour.0)
                .map(|(a, b)| (*a as i32 - b as i32).abs())
                .sum::<i32>()
                > 200
        })
        .count();
    assert!(
        text_pixels > 20,
        "text drawn in a contrasting colour ({text_pixels} pixels)"
    );
    assert_eq!(
        changed(&image, [0, 0, 200, 60]),
        0,
        "nothing drawn far above the label"
    );
}

#[test]
fn label_goes_inside_the_box_at_the_top_edge() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([20.0, 0.0, 180.0, 120.0], 1, 0.5)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(1);
    // Under the top outline, inside the box, the label's background starts at x = 20.
    assert_eq!(*image.get_pixel(21, 5), colour);
    assert_eq!(
        *image.get_pixel(60, 10),
        colour,
        "label background or text inside the box"
    );
    assert_eq!(
        changed(&image, [22, 40, 178, 118]),
        0,
        "the rest of the interior is untouched"
    );
}

#[test]
fn label_is_shifted_left_to_stay_inside_the_image() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([180.0, 100.0, 199.0, 150.0], 1, 0.99)],
        &CategoryMap::coco_torchvision(),
    );
    assert_ne!(
        *image.get_pixel(199, 98),
        GREY,
        "label reaches the right edge"
    );
    assert!(
        changed(&image, [100, 80, 180, 100]) > 0,
        "label extends left of the box"
    );
}

#[test]
fn boxes_outside_the_image_or_not_finite_do_not_panic() {
    let mut image = grey_image(64, 48);
    let boxes = [
        [-50.0, -50.0, 500.0, 500.0],
        [100.0, 100.0, 300.0, 300.0],
        [f32::NAN, 0.0, 10.0, 10.0],
        [10.0, 10.0, 10.0, 10.0],
        [30.0, 40.0, 5.0, 2.0],
        [f32::MAX, f32::MIN, f32::INFINITY, 1.0],
    ];
    let detections: Vec<_> = boxes.iter().map(|b| detection(*b, 200, 0.7)).collect();
    draw_detections(&mut image, &detections, &CategoryMap::default());
    assert_eq!(
        *image.get_pixel(0, 47),
        class_colour(200),
        "the huge box is clipped to the border"
    );
    assert_eq!(
        *image.get_pixel(63, 30),
        class_colour(200),
        "right edge drawn at the border"
    );
}

#[test]
fn classes_get_distinct_colours() {
    let colours: std::collections::HashSet<_> =
        (0..91).map(|label| class_colour(label).0).collect();
    assert_eq!(colours.len(), 91);
}

/// Draws the ground truth of a real COCO image (as if detected) and saves it for a look:
/// `$TMPDIR/detect_draw_000000005001.png`.
#[test]
fn draws_real_coco_annotations() {
    let data = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/coco_val80"
    ));
    if !data.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is missing",
            data.display()
        );
        eprintln!("skipped: {} is missing", data.display());
        return;
    }
    let annotations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("annotations.json")).unwrap()).unwrap();
    let detections: Vec<Detection> = annotations["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["image_id"] == 5001)
        .enumerate()
        .map(|(i, a)| {
            let b: Vec<f32> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let score = 0.99 - 0.05 * i as f32;
            detection(
                [b[0], b[1], b[0] + b[2], b[1] + b[3]],
                a["category_id"].as_u64().unwrap() as usize,
                score,
            )
        })
        .collect();
    assert_eq!(detections.len(), 18);
    let mut image = image::open(data.join("images/000000005001.jpg"))
        .unwrap()
        .to_rgb8();
    draw_detections(&mut image, &detections, &CategoryMap::coco_torchvision());
    // The scissors box [173.66, 204.76, 107.87, 238.39]: its left edge at x = 174.
    assert_eq!(*image.get_pixel(174, 400), class_colour(87));
    image
        .save(std::env::temp_dir().join("detect_draw_000000005001.png"))
        .unwrap();
}
