//! Image files → 8-bit RGB pixels, with the checks a dataset needs.
//!
//! JPEG and PNG are decoded by the `image` crate (zune-jpeg for JPEG). Grayscale, grayscale +
//! alpha, RGBA, 16-bit and CMYK (converted by the JPEG decoder) all come out as interleaved
//! RGB8; alpha is dropped, as PIL's `convert("RGB")` does. EXIF orientation is not applied,
//! matching torchvision's COCO reference pipeline (PIL `Image.open(...).convert("RGB")`).
//!
//! The JPEG decoder is lenient: it fills a truncated scan with grey instead of failing. A
//! truncated file is caught here instead: its marker structure ends before the end-of-image
//! marker.
use std::io::Cursor;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// An RGB image, pixels interleaved row by row (`[y][x][c]`), 8 bits per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    /// `height * width * 3` bytes.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// Wraps interleaved RGB pixels; `None` if the length is not `height * width * 3`.
    pub fn from_pixels(width: usize, height: usize, pixels: Vec<u8>) -> Option<Self> {
        (pixels.len() == width * height * 3).then_some(RgbImage {
            width,
            height,
            pixels,
        })
    }
}

/// Why an image file could not be used. Every variant names the file.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode image {path}: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("image {path} is truncated: the JPEG has no end-of-image marker (FF D9)")]
    Truncated { path: PathBuf },
    #[error(
        "image {path} is {got_width}x{got_height} pixels but the annotations say \
         {expected_width}x{expected_height} (width x height)"
    )]
    SizeMismatch {
        path: PathBuf,
        expected_width: usize,
        expected_height: usize,
        got_width: usize,
        got_height: usize,
    },
}

/// Reads and decodes an image file to RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb(&bytes, path)
}

/// Reads and decodes an image file to RGB and checks its size against the annotation's
/// `width x height`.
pub fn load_rgb_checked(
    path: &Path,
    expected_width: usize,
    expected_height: usize,
) -> Result<RgbImage, ImageError> {
    let image = load_rgb(path)?;
    if (image.width, image.height) != (expected_width, expected_height) {
        return Err(ImageError::SizeMismatch {
            path: path.to_path_buf(),
            expected_width,
            expected_height,
            got_width: image.width,
            got_height: image.height,
        });
    }
    Ok(image)
}

/// Decodes an encoded image (JPEG or PNG, detected from its bytes) to RGB; `path` only names
/// it in errors.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, ImageError> {
    let decode_error = |message: String| ImageError::Decode {
        path: path.to_path_buf(),
        message,
    };
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(ImageError::Truncated {
                path: path.to_path_buf(),
            })
        }
        Some(_) => {}
        None => return Err(decode_error("unknown format (expected JPEG or PNG)".into())),
    }
    let decoded = reader.decode().map_err(|e| decode_error(e.to_string()))?;
    let rgb = match decoded {
        image::DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Ok(RgbImage {
        width,
        height,
        pixels: rgb.into_raw(),
    })
}

/// Whether a JPEG's segments run to its end-of-image marker (`FF D9`). Walks the marker
/// structure (segment lengths, entropy-coded data up to the next marker), so thumbnails inside
/// APP segments and data appended after EOI do not fool it; running out of bytes first means the
/// file was cut.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Next marker: skip stray bytes and 0xFF fill.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue, // standalone markers
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return false;
        };
        i += len;
        if len < 2 || i > b.len() {
            return false;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart marker,
            // or the next real marker.
            loop {
                while i < b.len() && b[i] != 0xFF {
                    i += 1;
                }
                match b.get(i + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bytes_that_are_no_image() {
        let err = decode_rgb(b"not an image at all", Path::new("x.jpg")).unwrap_err();
        assert!(err.to_string().contains("x.jpg"), "{err}");
    }

    #[test]
    fn jpeg_structure_walk_finds_the_end_marker() {
        // SOI, APP0 (length 4, holding a fake EOI), SOS (length 2), data with a stuffed 0xFF
        // and a restart marker, EOI, then trailing bytes.
        let full = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 0, 2, 1, 0xFF, 0, 2, 0xFF, 0xD0,
            3, 0xFF, 0xD9, 7, 7,
        ];
        assert!(jpeg_is_complete(&full));
        for cut in 3..19 {
            assert!(!jpeg_is_complete(&full[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn from_pixels_checks_the_length() {
        assert!(RgbImage::from_pixels(2, 2, vec![0; 12]).is_some());
        assert!(RgbImage::from_pixels(2, 2, vec![0; 11]).is_none());
    }
}
