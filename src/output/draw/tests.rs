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

/// The label's background in its bottom padding row (just above the box): from the box's left
/// edge x = 50 for the label's width, worked out by hand from the font rather than measured by
/// the drawing code. DejaVu Sans's advance widths (hmtx, 2048 units/em, read with fontTools) for
/// "car 0.93" sum to 8434 units; at 12 px per ascent-descent (1901 + 483 units) that is 42.45 px,
/// plus 2 x 3 px padding = 48.45 px. Allowed: [47, 52], for rounding up to whole pixels (+2) and
/// kerning (-1).
#[test]
fn label_sits_on_top_of_the_box_with_readable_text() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([50.0, 80.0, 150.0, 180.0], 3, 0.93)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(3);
    assert_eq!(DrawStyle::for_image(200, 200).font_px, 12.0);
    let row = 79;
    assert_eq!(*image.get_pixel(49, row), GREY, "nothing left of the box");
    let label_pixels: Vec<u32> = (40..160)
        .filter(|&x| *image.get_pixel(x, row) != GREY)
        .collect();
    assert_eq!(label_pixels.first(), Some(&50), "label starts at the box");
    let label_w = label_pixels.len() as u32;
    assert!((47..=52).contains(&label_w), "label width {label_w}");
    assert_eq!(
        *label_pixels.last().unwrap(),
        50 + label_w - 1,
        "one unbroken background"
    );
    assert!(
        label_pixels
            .iter()
            .all(|&x| *image.get_pixel(x, row) == colour),
        "padding row in the class colour"
    );
    // Text: rows of the label (12 px of text + 2 px padding above row 80) hold pixels far from
    // the background colour.
    let text_pixels = (66..79)
        .flat_map(|y| (50..50 + label_w).map(move |x| (x, y)))
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
    assert_eq!(
        changed(&image, [0, 0, 50, 200]),
        0,
        "nothing left of the box"
    );
    assert_eq!(
        changed(&image, [0, 180, 200, 200]),
        0,
        "nothing below the box"
    );
    assert_eq!(
        changed(&image, [150, 0, 200, 200]),
        0,
        "nothing right of the box"
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

/// A box at the right edge: its label ("truck 0.99": 10466 font units = 52.7 px of advance
/// widths + 6 px padding, worked out as above) cannot start at the box's x = 180, so it ends at
/// the image's right edge and its background reaches left of x = 150 but not of x = 120.
#[test]
fn label_is_shifted_left_to_stay_inside_the_image() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([180.0, 100.0, 199.0, 150.0], 8, 0.99)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(8);
    // Row 99 is the label's bottom padding row, column 199 inside its right padding.
    assert_eq!(
        *image.get_pixel(199, 99),
        colour,
        "label reaches the right edge"
    );
    assert_eq!(
        *image.get_pixel(150, 99),
        colour,
        "label extends left of x = 150"
    );
    assert_eq!(
        changed(&image, [0, 0, 120, 200]),
        0,
        "but not beyond its own width"
    );
}

/// Labels are drawn from the lowest score up: where two labels overlap, the best one is seen.
#[test]
fn best_detections_label_is_on_top() {
    let labels = CategoryMap::coco_torchvision();
    let (worse, better) = (
        detection([40.0, 100.0, 160.0, 190.0], 3, 0.6),
        detection([40.0, 100.0, 120.0, 150.0], 1, 0.9),
    );
    for detections in [[worse, better], [better, worse]] {
        let mut image = grey_image(200, 200);
        draw_detections(&mut image, &detections, &labels);
        // Both labels start at (40, 99) (bottom-left padding pixel): the better one wins.
        assert_eq!(*image.get_pixel(41, 99), class_colour(1));
        // Both outlines share the top-left corner; the worse box's own edges stay visible.
        assert_eq!(*image.get_pixel(159, 170), class_colour(3));
    }
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
        [f32::NEG_INFINITY, 0.0, 5.0, 5.0],
        [-30.0, -30.0, -1.0, -1.0],
        [0.0, 0.0, 64.0, 0.2],
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

/// Nothing is drawn for a box that is empty, non-finite or wholly outside the image.
#[test]
fn empty_non_finite_and_outside_boxes_draw_nothing() {
    let boxes = [
        [f32::NAN, 0.0, 10.0, 10.0],
        [0.0, f32::INFINITY, 10.0, 10.0],
        [10.0, 10.0, 10.0, 30.0],
        [10.0, 10.0, 10.2, 30.0], // rounds to zero width
        [-30.0, -30.0, -1.0, -1.0],
        [70.0, 10.0, 90.0, 20.0],
        [10.0, 50.0, 20.0, 60.0],
    ];
    let mut image = grey_image(64, 48);
    let detections: Vec<_> = boxes.iter().map(|b| detection(*b, 1, 0.7)).collect();
    draw_detections(&mut image, &detections, &CategoryMap::coco_torchvision());
    assert_eq!(changed(&image, [0, 0, 64, 48]), 0);
}

/// A box that leaves the image on the left and bottom: its outline is drawn along the image's
/// border there, its own edges elsewhere.
#[test]
fn box_partly_outside_is_clipped_to_the_border() {
    let mut image = grey_image(200, 200);
    draw_detections(
        &mut image,
        &[detection([-40.0, 100.0, 60.0, 260.0], 3, 0.5)],
        &CategoryMap::coco_torchvision(),
    );
    let colour = class_colour(3);
    for (x, y) in [
        (0, 150),
        (1, 150),
        (30, 199),
        (30, 198),
        (59, 150),
        (58, 150),
    ] {
        assert_eq!(*image.get_pixel(x, y), colour, "outline at ({x}, {y})");
    }
    assert_eq!(changed(&image, [2, 102, 58, 198]), 0, "interior untouched");
    assert_eq!(
        changed(&image, [60, 0, 200, 200]),
        0,
        "right of the box untouched"
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
