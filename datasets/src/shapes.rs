//! `shapes`: a built-in synthetic detection dataset that needs no files.
//!
//! Each image is a textured background (a tinted grey with stripes or checks and pixel noise)
//! with 1 to `max_objects` flat-coloured circles, squares and upward triangles. Everything is
//! a pure function of `(seed, split, index)`, so the same seed gives the same images on every
//! machine, and images are rendered on demand instead of stored.
//!
//! What makes it learnable and cleanly evaluable:
//! - the class is the shape, never the colour (colours are drawn independently of the class);
//! - objects are 15% to 45% of the image side, and never overlap (placement is retried until
//!   boxes are at least 2 px apart), so each box is exactly the extent of its drawn pixels;
//! - object colours are saturated (a channel below 50 or above 210) while the background stays
//!   within 50..=210 per channel, so objects always differ from the background.
//!
//! The split presents itself as an in-memory COCO dataset ([`shapes_coco`]): images, annotations
//! (bbox xywh, area = pixel count) and categories `circle`, `square`, `triangle` (ids 1, 2, 3), so
//! the loader, category map and evaluator treat it like any COCO file.
use serde::{Deserialize, Serialize};

use crate::coco::{Annotation, Category, CocoDataset, ImageInfo};
use crate::image::RgbImage;
use crate::rng::SplitMix64;
use crate::transforms::TransformConfig;

/// Settings of the synthetic dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapesConfig {
    /// Seed of every image and annotation.
    pub seed: u64,
    /// Image width and height in pixels.
    pub image_size: usize,
    /// Images in the training split.
    pub num_train: usize,
    /// Images in the validation split.
    pub num_val: usize,
    /// Largest number of objects per image (at least 1 is always drawn).
    pub max_objects: usize,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig {
            seed: 0,
            image_size: 160,
            num_train: 1000,
            num_val: 100,
            max_objects: 4,
        }
    }
}

impl ShapesConfig {
    /// The preprocessing to train and evaluate on this dataset at its native size (no
    /// upscaling to COCO's 800 px, which would only cost time): `min_size = max_size =
    /// image_size`, ImageNet normalisation, padding to /32.
    pub fn native_transform(&self) -> TransformConfig {
        TransformConfig {
            min_size: vec![self.image_size],
            max_size: self.image_size,
            ..TransformConfig::default()
        }
    }
}

/// Train or validation split (different images from the same seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// The three object classes, in category-id order.
pub const SHAPE_NAMES: [&str; 3] = ["circle", "square", "triangle"];

const PALETTE: [[u8; 3]; 8] = [
    [220, 30, 30],
    [30, 200, 40],
    [40, 60, 230],
    [240, 220, 20],
    [220, 30, 220],
    [20, 210, 220],
    [250, 140, 10],
    [245, 245, 245],
];

/// One drawn object: its class (index into [`SHAPE_NAMES`]), colour and geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    class: usize,
    color: [u8; 3],
    /// Centre and size (diameter / side / base) in pixels.
    cx: f64,
    cy: f64,
    size: f64,
}

impl Shape {
    /// Whether the pixel whose centre is `(px, py)` is covered.
    fn covers(&self, px: f64, py: f64) -> bool {
        let (dx, dy, r) = (px - self.cx, py - self.cy, self.size / 2.0);
        match self.class {
            0 => dx * dx + dy * dy <= r * r,
            1 => dx.abs() <= r && dy.abs() <= r,
            // Apex (0, -r), base corners (±r, r): inside when below both slanted edges.
            _ => dy <= r && 2.0 * dx.abs() <= dy + r,
        }
    }

    /// Pixel range that may be covered: `[x0, x1) x [y0, y1)`, clipped to the image.
    fn pixel_bounds(&self, size: usize) -> (usize, usize, usize, usize) {
        let r = self.size / 2.0 + 1.0;
        let lo = |c: f64| (c - r).floor().max(0.0) as usize;
        let hi = |c: f64| ((c + r).ceil().max(0.0) as usize).min(size);
        (lo(self.cx), hi(self.cx), lo(self.cy), hi(self.cy))
    }
}

fn image_rng(config: &ShapesConfig, split: Split, index: usize) -> SplitMix64 {
    SplitMix64::derive(config.seed, &[split as u64 + 1, index as u64])
}

/// The objects of one image, from its own random stream (placement first, then drawing).
fn layout(config: &ShapesConfig, rng: &mut SplitMix64) -> Vec<Shape> {
    let s = config.image_size as f64;
    let wanted = 1 + rng.below(config.max_objects.max(1));
    let mut shapes: Vec<Shape> = Vec::with_capacity(wanted);
    for _ in 0..wanted * 20 {
        if shapes.len() == wanted {
            break;
        }
        let size = rng.range_f64(0.15 * s, 0.45 * s).max(4.0);
        let cand = Shape {
            class: rng.below(SHAPE_NAMES.len()),
            color: PALETTE[rng.below(PALETTE.len())],
            cx: rng.range_f64(size / 2.0 + 1.0, s - size / 2.0 - 1.0),
            cy: rng.range_f64(size / 2.0 + 1.0, s - size / 2.0 - 1.0),
            size,
        };
        let apart = |o: &Shape| {
            let gap = (cand.size + o.size) / 2.0 + 2.0;
            (cand.cx - o.cx).abs() >= gap || (cand.cy - o.cy).abs() >= gap
        };
        if shapes.iter().all(apart) {
            shapes.push(cand);
        }
    }
    shapes
}

/// Draws the textured background of image `index` (without objects).
pub fn render_background(config: &ShapesConfig, split: Split, index: usize) -> RgbImage {
    let mut rng = image_rng(config, split, index);
    let _ = layout(config, &mut rng);
    background(config.image_size, &mut rng)
}

fn background(size: usize, rng: &mut SplitMix64) -> RgbImage {
    let grey = rng.range_f64(80.0, 170.0);
    let tint: Vec<f64> = (0..3).map(|_| rng.range_f64(-20.0, 20.0)).collect();
    let pattern = rng.below(3);
    let period = rng.range_f64(6.0, 24.0);
    let angle = rng.range_f64(0.0, std::f64::consts::PI);
    let (ca, sa) = (angle.cos(), angle.sin());
    let mut pixels = vec![0u8; size * size * 3];
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f64, y as f64);
            let texture = match pattern {
                0 => 15.0 * ((fx * ca + fy * sa) * std::f64::consts::TAU / period).sin(),
                1 => {
                    let cell = ((fx / period).floor() + (fy / period).floor()) as i64;
                    if cell.rem_euclid(2) == 0 {
                        12.0
                    } else {
                        -12.0
                    }
                }
                _ => 0.0,
            };
            let noise = rng.range_f64(-8.0, 8.0);
            for c in 0..3 {
                let v = grey + tint[c] + texture + noise;
                pixels[(y * size + x) * 3 + c] = v.round().clamp(50.0, 210.0) as u8;
            }
        }
    }
    RgbImage {
        width: size,
        height: size,
        pixels,
    }
}

/// One object of an image: xyxy box tight around its drawn pixels (continuous coordinates:
/// pixel `x` spans `[x, x + 1)`), class index (0..3) and number of drawn pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeObject {
    pub box_xyxy: [f32; 4],
    pub class: usize,
    pub pixel_count: usize,
}

/// Calls `paint(x, y)` for every pixel the shape covers and returns its tight box.
fn rasterize(
    shape: &Shape,
    size: usize,
    mut paint: impl FnMut(usize, usize),
) -> Option<ShapeObject> {
    let (x0, x1, y0, y1) = shape.pixel_bounds(size);
    let (mut bx0, mut by0, mut bx1, mut by1) = (usize::MAX, usize::MAX, 0, 0);
    let mut count = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            if shape.covers(x as f64 + 0.5, y as f64 + 0.5) {
                paint(x, y);
                (bx0, by0) = (bx0.min(x), by0.min(y));
                (bx1, by1) = (bx1.max(x + 1), by1.max(y + 1));
                count += 1;
            }
        }
    }
    (count > 0).then_some(ShapeObject {
        box_xyxy: [bx0 as f32, by0 as f32, bx1 as f32, by1 as f32],
        class: shape.class,
        pixel_count: count,
    })
}

/// The objects of image `index` of a split, without drawing the image.
pub fn objects(config: &ShapesConfig, split: Split, index: usize) -> Vec<ShapeObject> {
    let shapes = layout(config, &mut image_rng(config, split, index));
    shapes
        .iter()
        .filter_map(|s| rasterize(s, config.image_size, |_, _| {}))
        .collect()
}

/// Renders image `index` of a split with its objects.
pub fn render(config: &ShapesConfig, split: Split, index: usize) -> (RgbImage, Vec<ShapeObject>) {
    let mut rng = image_rng(config, split, index);
    let shapes = layout(config, &mut rng);
    let mut image = background(config.image_size, &mut rng);
    let size = config.image_size;
    let objects = shapes
        .iter()
        .filter_map(|shape| {
            rasterize(shape, size, |x, y| {
                let p = (y * size + x) * 3;
                image.pixels[p..p + 3].copy_from_slice(&shape.color);
            })
        })
        .collect();
    (image, objects)
}

/// File name of a shapes image in the COCO records (no such file exists; it names the record).
pub fn file_name(split: Split, index: usize) -> String {
    format!("shapes_{}_{:06}.png", split.name(), index)
}

/// The split as an in-memory COCO dataset. Image ids are `index + 1`; annotation ids count from 1.
pub fn shapes_coco(config: &ShapesConfig, split: Split) -> CocoDataset {
    let count = match split {
        Split::Train => config.num_train,
        Split::Val => config.num_val,
    };
    let mut images = Vec::with_capacity(count);
    let mut annotations = Vec::new();
    for index in 0..count {
        let image_id = index as u64 + 1;
        images.push(ImageInfo {
            id: image_id,
            file_name: file_name(split, index),
            width: config.image_size as u32,
            height: config.image_size as u32,
        });
        for object in objects(config, split, index) {
            let b = object.box_xyxy;
            let (x, y) = (b[0] as f64, b[1] as f64);
            annotations.push(Annotation {
                id: annotations.len() as u64 + 1,
                image_id,
                category_id: object.class as u64 + 1,
                bbox: [x, y, b[2] as f64 - x, b[3] as f64 - y],
                area: object.pixel_count as f64,
                iscrowd: false,
            });
        }
    }
    let categories = SHAPE_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| Category {
            id: i as u64 + 1,
            name: name.to_string(),
            supercategory: "shape".to_string(),
        })
        .collect();
    CocoDataset {
        images,
        annotations,
        categories,
    }
}
