//! Image files → 8-bit RGB pixels equal to PIL's `Image.open(path).convert("RGB")`, which is what
//! torchvision's detection references feed their models.
//!
//! - JPEG ([`jpeg`]): libjpeg-turbo's decompressor (built from source by `mozjpeg-sys`, whose
//!   decoder is libjpeg-turbo's) with PIL's settings: islow integer IDCT, fancy chroma
//!   upsampling, RGB output. Grayscale is replicated to RGB; CMYK and YCCK are converted as PIL
//!   converts them. The decoder fills a truncated scan with grey instead of failing, so a cut file
//!   is caught first by walking its markers ([`jpeg_markers`]).
//! - PNG ([`png`]): the `png` crate, with PIL's 8-bit conversions of every colour type and depth
//!   (16-bit samples keep their high byte; 16-bit grey saturates at 255; palette, tRNS and
//!   alpha are dropped to RGB).
//! - EXIF orientation is not applied: PIL's `Image.open` does not apply it and neither does
//!   torchvision unless asked (`ImageOps.exif_transpose`), so pixels stay as stored.
//! - The header is read first: an image over [`DecodeLimits::max_pixels`] is refused before its
//!   pixels are allocated. [`image_size`] reads only the header.
use std::path::{Path, PathBuf};

use thiserror::Error;

mod jpeg;
mod jpeg_markers;
mod png;
#[cfg(test)]
mod tests;

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

/// Limits checked against an image's header before its pixels are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width * height`. The default, 178,956,970, is twice PIL's
    /// `Image.MAX_IMAGE_PIXELS` (89,478,485): the size at which PIL raises
    /// `DecompressionBombError` instead of only warning.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 2 * 89_478_485,
        }
    }
}

impl DecodeLimits {
    /// The `max_pixels` a caller may ask for: at least one pixel, at most `u32::MAX`
    /// (4,294,967,295), which every JPEG fits (its sides are at most 65,535) and which is
    /// already 12 GiB of RGB pixels.
    pub const MAX_PIXELS_RANGE: std::ops::RangeInclusive<u64> = 1..=u32::MAX as u64;

    /// `Err(TooLarge)` naming `path` when `width x height` is over the limit.
    fn check(&self, width: usize, height: usize, path: &Path) -> Result<(), ImageError> {
        if (width as u64).saturating_mul(height as u64) > self.max_pixels {
            return Err(ImageError::TooLarge {
                path: path.to_path_buf(),
                width,
                height,
                max_pixels: self.max_pixels,
            });
        }
        Ok(())
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
        "image {path} is {width}x{height} pixels ({} pixels), over the limit of {max_pixels} \
         pixels (width x height); if the file is trusted, raise the limit with \
         --max-image-pixels", *width as u64 * *height as u64
    )]
    TooLarge {
        path: PathBuf,
        width: usize,
        height: usize,
        max_pixels: u64,
    },
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

pub(crate) fn decode_error(path: &Path, message: impl Into<String>) -> ImageError {
    ImageError::Decode {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The formats we decode, told apart by their first bytes.
enum Format {
    Jpeg,
    Png,
}

fn format_of(bytes: &[u8], path: &Path) -> Result<Format, ImageError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else {
        Err(decode_error(path, "unknown format (expected JPEG or PNG)"))
    }
}

/// Reads and decodes an image file to RGB under the default [`DecodeLimits`].
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    load_rgb_with_limits(path, &DecodeLimits::default())
}

/// [`load_rgb`] with explicit limits.
pub fn load_rgb_with_limits(path: &Path, limits: &DecodeLimits) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb_with_limits(&bytes, path, limits)
}

/// Reads and decodes an image file to RGB under `limits` and checks its size against the
/// annotation's `width x height`.
pub fn load_rgb_checked(
    path: &Path,
    expected_width: usize,
    expected_height: usize,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageError> {
    let image = load_rgb_with_limits(path, limits)?;
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

/// Decodes an encoded image (JPEG or PNG, told apart by its bytes) to RGB under the default
/// [`DecodeLimits`]; `path` only names it in errors.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, ImageError> {
    decode_rgb_with_limits(bytes, path, &DecodeLimits::default())
}

/// [`decode_rgb`] with explicit limits, checked on the header before any pixel is decoded.
pub fn decode_rgb_with_limits(
    bytes: &[u8],
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageError> {
    match format_of(bytes, path)? {
        Format::Jpeg => {
            if !jpeg_markers::jpeg_is_complete(bytes) {
                return Err(ImageError::Truncated {
                    path: path.to_path_buf(),
                });
            }
            jpeg::decode(bytes, path, limits)
        }
        Format::Png => png::decode(bytes, path, limits),
    }
}

/// `(width, height)` from the header alone, without decoding pixels.
pub fn image_size(bytes: &[u8], path: &Path) -> Result<(usize, usize), ImageError> {
    match format_of(bytes, path)? {
        Format::Jpeg => jpeg::size(bytes, path),
        Format::Png => png::size(bytes, path),
    }
}
