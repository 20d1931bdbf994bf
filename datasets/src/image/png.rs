//! PNG through the `png` crate, converted to 8-bit RGB as PIL's `Image.open(..).convert("RGB")`.
//!
//! What PIL does with each PNG layout (checked pixel for pixel by `decode_parity.rs`):
//! - palette (with or without tRNS): the palette colours; transparency is dropped.
//! - 1/2/4-bit grey: scaled to 0..255 (`png`'s EXPAND does the same).
//! - 8-bit grey, grey+alpha, RGB, RGBA: alpha dropped, grey replicated.
//! - 16-bit RGB, RGBA and grey+alpha: the high byte of each sample (rawmodes `RGB;16B`,
//!   `RGBA;16B`, `LA;16B`), not a rounded division.
//! - 16-bit grey (with or without tRNS): PIL opens it as mode `I;16` and `convert("RGB")`
//!   saturates: values above 255 become 255. Surprising, but it is what torchvision sees.
use std::io::Cursor;
use std::path::Path;

use png::{BitDepth, ColorType, Decoder, Transformations};

use super::{decode_error, DecodeLimits, ImageError, RgbImage};

fn decoder(bytes: &[u8]) -> Decoder<Cursor<&[u8]>> {
    let mut decoder = Decoder::new(Cursor::new(bytes));
    // Palette → RGB(A), low-bit grey → 8 bits, tRNS → alpha; 16-bit samples stay 16-bit.
    decoder.set_transformations(Transformations::EXPAND);
    decoder
}

/// `(width, height)` from the IHDR chunk.
pub(super) fn size(bytes: &[u8], path: &Path) -> Result<(usize, usize), ImageError> {
    let mut decoder = decoder(bytes);
    let info = decoder
        .read_header_info()
        .map_err(|e| decode_error(path, format!("PNG: {e}")))?;
    Ok((info.width as usize, info.height as usize))
}

pub(super) fn decode(
    bytes: &[u8],
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageError> {
    let png_error = |e: png::DecodingError| decode_error(path, format!("PNG: {e}"));
    let mut decoder = decoder(bytes);
    let header = decoder.read_header_info().map_err(png_error)?;
    let (width, height) = (header.width as usize, header.height as usize);
    // A 16-bit grey source saturates in PIL even after tRNS has become an alpha channel.
    let grey16_source = header.color_type == ColorType::Grayscale;
    limits.check(width, height, path)?;
    let mut reader = decoder.read_info().map_err(png_error)?;
    let len = reader
        .output_buffer_size()
        .ok_or_else(|| decode_error(path, "PNG: image too large for this machine"))?;
    let mut buf = vec![0u8; len];
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    let channels = frame.color_type.samples();
    let sample_bytes = match frame.bit_depth {
        BitDepth::Eight => 1,
        BitDepth::Sixteen => 2,
        other => {
            return Err(decode_error(
                path,
                format!("PNG: unexpected {other:?} output after expansion"),
            ))
        }
    };
    let to_u8 = |s: &[u8]| -> u8 {
        match (sample_bytes, grey16_source) {
            (1, _) => s[0],
            (_, true) => u16::from_be_bytes([s[0], s[1]]).min(255) as u8,
            _ => s[0], // big-endian: the high byte
        }
    };
    let mut pixels = Vec::with_capacity(width * height * 3);
    for row in buf.chunks_exact(frame.line_size).take(height) {
        for px in row[..width * channels * sample_bytes].chunks_exact(channels * sample_bytes) {
            let sample = |i: usize| to_u8(&px[i * sample_bytes..]);
            match channels {
                1 | 2 => pixels.extend_from_slice(&[sample(0); 3]),
                _ => pixels.extend_from_slice(&[sample(0), sample(1), sample(2)]),
            }
        }
    }
    RgbImage::from_pixels(width, height, pixels)
        .ok_or_else(|| decode_error(path, "PNG: fewer rows than the header gives"))
}
