//! Drawing detections on an image: a box outline per detection in a per-class colour and a
//! filled label `name 0.93` above it (inside the box when it touches the top edge), in the
//! spirit of torchvision's `draw_bounding_boxes` and detectron2's visualizer.
//!
//! The pixels are `imageproc::drawing`'s: hollow rectangles for the outline, a filled rectangle
//! for the label background and anti-aliased text (glyph coverage blended into the background)
//! in DejaVu Sans, the font detectron2's matplotlib renders with, embedded in the binary by the
//! `dejavu` crate. What is ours: the class colours, the style that scales with the image, the
//! label placement and the order (best detection's label on top).
//!
//! Everything is clipped to the image: boxes partly or wholly outside it, empty, or with
//! non-finite coordinates never panic (`imageproc::rect::Rect` panics on a zero width or
//! height, so [`pixel_rect`] only builds non-empty ones).
use ab_glyph::FontRef;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

use crate::output::detection::Detection;
use datasets::coco::CategoryMap;

/// Horizontal padding of the label text inside its background, in pixels.
const LABEL_PAD_X: u32 = 3;
/// Vertical padding of the label text inside its background, in pixels.
const LABEL_PAD_Y: u32 = 1;

/// Sizes derived from the image so labels stay readable on small and large images alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawStyle {
    /// Box outline width in pixels (2 below ~900x900 pixels, else 3).
    pub thickness: u32,
    /// Label text height (ascent - descent) in pixels.
    pub font_px: f32,
}

impl DrawStyle {
    /// The style for an image of `width` x `height` pixels.
    pub fn for_image(width: u32, height: u32) -> Self {
        let diagonal_scale = ((width as f32) * (height as f32)).sqrt(); // ~ side of a square
        Self {
            thickness: if diagonal_scale < 900.0 { 2 } else { 3 },
            font_px: (diagonal_scale / 36.0).clamp(12.0, 30.0),
        }
    }
}

/// The outline colour of a class: hues spread by the golden ratio so neighbouring labels differ.
pub fn class_colour(label: usize) -> Rgb<u8> {
    const GOLDEN_RATIO_CONJUGATE: f32 = 0.618_034;
    let hue = (0.1 + label as f32 * GOLDEN_RATIO_CONJUGATE).fract(); // [0, 1)
    hsv_to_rgb(hue, 0.85, 0.95)
}

/// Draws `detections` (boxes in this image's pixels) onto `image`. Boxes are drawn from the
/// lowest score up, then all labels, so the best detection's label ends on top.
pub fn draw_detections(image: &mut RgbImage, detections: &[Detection], labels: &CategoryMap) {
    let style = DrawStyle::for_image(image.width(), image.height());
    let font = FontRef::try_from_slice(dejavu::sans::regular())
        .expect("the DejaVu font embedded by the `dejavu` crate parses");
    let mut order: Vec<(&Detection, Rect)> = detections
        .iter()
        .filter_map(|d| Some((d, pixel_rect(d.box_xyxy, image.width(), image.height())?)))
        .collect();
    order.sort_by(|(a, _), (b, _)| a.score.total_cmp(&b.score));
    for (detection, rect) in &order {
        draw_outline(image, *rect, style.thickness, class_colour(detection.label));
    }
    for (detection, rect) in &order {
        let name = &labels.category(detection.label).name;
        let text = format!("{name} {:.2}", detection.score);
        let background = class_colour(detection.label);
        draw_label(image, &font, style, *rect, &text, background);
    }
}

/// The box `[x1, y1, x2, y2]` rounded to whole pixels and clipped to the image, so a box that
/// leaves the image keeps a visible outline at its border; `None` for non-finite boxes and
/// boxes with nothing inside the image.
fn pixel_rect(box_xyxy: [f32; 4], width: u32, height: u32) -> Option<Rect> {
    if box_xyxy.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let [x1, y1, x2, y2] = box_xyxy.map(|v| v.clamp(-1e6, 1e6).round() as i64);
    let (width, height) = (i64::from(width), i64::from(height));
    let (left, right) = (x1.min(x2).clamp(0, width), x1.max(x2).clamp(0, width));
    let (top, bottom) = (y1.min(y2).clamp(0, height), y1.max(y2).clamp(0, height));
    (right > left && bottom > top).then(|| {
        Rect::at(left as i32, top as i32).of_size((right - left) as u32, (bottom - top) as u32)
    })
}

/// A `thickness`-pixel band along the inside of `rect`: nested one-pixel outlines, each one
/// pixel further in, until the rectangle is used up.
fn draw_outline(image: &mut RgbImage, rect: Rect, thickness: u32, colour: Rgb<u8>) {
    for inset in 0..thickness {
        let width = rect.width().saturating_sub(2 * inset);
        let height = rect.height().saturating_sub(2 * inset);
        if width == 0 || height == 0 {
            break;
        }
        let (left, top) = (rect.left() + inset as i32, rect.top() + inset as i32);
        draw_hollow_rect_mut(image, Rect::at(left, top).of_size(width, height), colour);
    }
}

/// A filled label with `text`, sitting on top of `rect` (inside it when there is no room
/// above), shifted left when it would leave the image on the right.
fn draw_label(
    image: &mut RgbImage,
    font: &FontRef<'static>,
    style: DrawStyle,
    rect: Rect,
    text: &str,
    background: Rgb<u8>,
) {
    let (text_w, text_h) = text_size(style.font_px, font, text);
    let (label_w, label_h) = (text_w + 2 * LABEL_PAD_X, text_h + 2 * LABEL_PAD_Y);
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    let (label_w_i, label_h_i) = (i64::from(label_w), i64::from(label_h));
    let (x1, y1) = (i64::from(rect.left()), i64::from(rect.top()));
    let top = if y1 >= label_h_i { y1 - label_h_i } else { y1 };
    let top = top.min(height - label_h_i).max(0);
    let left = x1.min(width - label_w_i).max(0);
    let (left, top) = (left as i32, top as i32);
    draw_filled_rect_mut(
        image,
        Rect::at(left, top).of_size(label_w, label_h),
        background,
    );

    let foreground = if luminance(background) > 140.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255; 3])
    };
    let (text_x, text_y) = (left + LABEL_PAD_X as i32, top + LABEL_PAD_Y as i32);
    draw_text_mut(image, foreground, text_x, text_y, style.font_px, font, text);
}

fn luminance(colour: Rgb<u8>) -> f32 {
    let [r, g, b] = colour.0.map(f32::from);
    0.299 * r + 0.587 * g + 0.114 * b
}

/// HSV (all in [0, 1]) to 8-bit RGB.
fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> Rgb<u8> {
    let sector = hue * 6.0;
    let fraction = sector.fract();
    let p = value * (1.0 - saturation);
    let q = value * (1.0 - saturation * fraction);
    let t = value * (1.0 - saturation * (1.0 - fraction));
    let (r, g, b) = match sector as u32 % 6 {
        0 => (value, t, p),
        1 => (q, value, p),
        2 => (p, value, t),
        3 => (p, q, value),
        4 => (t, p, value),
        _ => (value, p, q),
    };
    Rgb([r, g, b].map(|v| (v * 255.0).round() as u8))
}

#[cfg(test)]
mod tests;
