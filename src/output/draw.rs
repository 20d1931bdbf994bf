//! Drawing detections on an image: a box outline per detection in a per-class colour and a
//! filled label `name 0.93` above it (inside the box when it touches the top edge), in the
//! spirit of torchvision's `draw_bounding_boxes` and detectron2's visualizer.
//!
//! Text uses DejaVu Sans (the font detectron2's matplotlib renders with), embedded in the binary
//! by the `dejavu` crate and rasterised with `ab_glyph`. Everything is clipped to the image:
//! boxes partly or wholly outside it, or with non-finite coordinates, never panic.
use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

use crate::output::detection::Detection;
use datasets::coco::CategoryMap;

/// Horizontal padding of the label text inside its background, in pixels.
const LABEL_PAD_X: i64 = 3;
/// Vertical padding of the label text inside its background, in pixels.
const LABEL_PAD_Y: i64 = 1;

/// Sizes derived from the image so labels stay readable on small and large images alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawStyle {
    /// Box outline width in pixels (2 below ~900x900 pixels, else 3).
    pub thickness: i64,
    /// Label text height in pixels.
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
    let font = embedded_font();
    let mut order: Vec<&Detection> = detections.iter().collect();
    order.sort_by(|a, b| a.score.total_cmp(&b.score));
    for detection in &order {
        if let Some(rect) = pixel_rect(detection.box_xyxy, image.width(), image.height()) {
            draw_outline(image, rect, style.thickness, class_colour(detection.label));
        }
    }
    for detection in &order {
        if let Some(rect) = pixel_rect(detection.box_xyxy, image.width(), image.height()) {
            let text = format!(
                "{} {:.2}",
                labels.category(detection.label).name,
                detection.score
            );
            draw_label(
                image,
                &font,
                style,
                rect,
                &text,
                class_colour(detection.label),
            );
        }
    }
}

/// DejaVu Sans Regular, embedded in the binary.
pub fn embedded_font() -> FontRef<'static> {
    FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded DejaVu font parses")
}

/// `[x1, y1, x2, y2]` in integer pixels (x2, y2 exclusive) clipped to the image, so a box that
/// leaves the image keeps a visible outline at its border; `None` for non-finite boxes and
/// boxes with nothing inside the image.
fn pixel_rect(box_xyxy: [f32; 4], width: u32, height: u32) -> Option<[i64; 4]> {
    if box_xyxy.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let [x1, y1, x2, y2] = box_xyxy.map(|v| v.clamp(-1e6, 1e6).round() as i64);
    let (width, height) = (width as i64, height as i64);
    let rect = [
        x1.min(x2).clamp(0, width),
        y1.min(y2).clamp(0, height),
        x1.max(x2).clamp(0, width),
        y1.max(y2).clamp(0, height),
    ];
    (rect[2] > rect[0] && rect[3] > rect[1]).then_some(rect)
}

/// A `thickness`-pixel band along the inside of `rect`.
fn draw_outline(image: &mut RgbImage, rect: [i64; 4], thickness: i64, colour: Rgb<u8>) {
    let [x1, y1, x2, y2] = rect;
    let t = thickness.min((x2 - x1).max(1)).min((y2 - y1).max(1));
    fill_rect(image, [x1, y1, x2, y1 + t], colour); // top
    fill_rect(image, [x1, y2 - t, x2, y2], colour); // bottom
    fill_rect(image, [x1, y1, x1 + t, y2], colour); // left
    fill_rect(image, [x2 - t, y1, x2, y2], colour); // right
}

/// A filled label with `text`, sitting on top of `rect` (inside it when there is no room
/// above), shifted left when it would leave the image on the right.
fn draw_label(
    image: &mut RgbImage,
    font: &FontRef<'static>,
    style: DrawStyle,
    rect: [i64; 4],
    text: &str,
    background: Rgb<u8>,
) {
    let scaled = font.as_scaled(PxScale::from(style.font_px));
    let text_width = text_width(font, style.font_px, text);
    let label_w = text_width.ceil() as i64 + 2 * LABEL_PAD_X;
    let label_h = (scaled.ascent() - scaled.descent()).ceil() as i64 + 2 * LABEL_PAD_Y;
    let (width, height) = (image.width() as i64, image.height() as i64);
    let [x1, y1, _, _] = rect;
    let top = if y1 - label_h >= 0 {
        y1 - label_h
    } else {
        y1.max(0)
    };
    let top = top.min(height - label_h).max(0);
    let left = x1.min(width - label_w).max(0);
    fill_rect(
        image,
        [left, top, left + label_w, top + label_h],
        background,
    );

    let foreground = if luminance(background) > 140.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255; 3])
    };
    let baseline = (top + LABEL_PAD_Y) as f32 + scaled.ascent();
    let mut x = (left + LABEL_PAD_X) as f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            x += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(style.font_px, point(x, baseline));
        x += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + gx as i64;
            let py = bounds.min.y as i64 + gy as i64;
            blend_pixel(image, px, py, foreground, coverage);
        });
    }
}

/// Width in pixels of `text` at `font_px`.
pub fn text_width(font: &FontRef<'static>, font_px: f32, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(font_px));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// Fills `[x1, x2) x [y1, y2)` clipped to the image.
fn fill_rect(image: &mut RgbImage, rect: [i64; 4], colour: Rgb<u8>) {
    let (width, height) = (image.width() as i64, image.height() as i64);
    let [x1, y1, x2, y2] = rect;
    for y in y1.max(0)..y2.min(height) {
        for x in x1.max(0)..x2.min(width) {
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// Mixes `colour` into the pixel with weight `alpha` (glyph coverage), if inside the image.
fn blend_pixel(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>, alpha: f32) {
    if x < 0 || y < 0 || x >= image.width() as i64 || y >= image.height() as i64 {
        return;
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let pixel = image.get_pixel_mut(x as u32, y as u32);
    for (dst, src) in pixel.0.iter_mut().zip(colour.0) {
        *dst = (*dst as f32 * (1.0 - alpha) + src as f32 * alpha).round() as u8;
    }
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
