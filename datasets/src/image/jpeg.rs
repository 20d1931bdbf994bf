//! JPEG through libjpeg-turbo's decompressor, set up as PIL sets it up.
//!
//! PIL (`JpegDecode.c`) keeps libjpeg's defaults, islow integer IDCT, fancy upsampling and
//! block smoothing on, and asks for RGB from 1- and 3-component files (grayscale replicated,
//! YCbCr converted) and for CMYK from 4-component files (libjpeg turns YCCK into CMYK). We ask
//! for the same, so the same library code runs on the same coefficients. `mozjpeg-sys` builds
//! that decompressor from source (mozjpeg's decoder is libjpeg-turbo's), with SIMD when `nasm`
//! is installed; libjpeg-turbo's SIMD islow IDCT, upsampling and colour conversion are
//! bit-exact with its C code, so the pixels do not depend on it.
//!
//! libjpeg reports a fatal error by calling `error_exit`, which the `mozjpeg` crate turns into
//! an unwind (carrying the message, without a panic report); [`run`] catches it and returns an
//! [`ImageError`] naming the file. Warnings (e.g. "Corrupt JPEG data: N extraneous bytes") are
//! ignored, as PIL ignores them.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use mozjpeg::{ColorSpace, DctMethod, Decompress};

use super::{decode_error, DecodeLimits, ImageError, RgbImage};

/// Runs libjpeg calls, turning a libjpeg fatal error (an unwind) or an I/O error into
/// `ImageError::Decode` for `path`.
fn run<T>(path: &Path, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, ImageError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(decode_error(path, format!("libjpeg: {e}"))),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libjpeg fatal error".into());
            Err(decode_error(path, message))
        }
    }
}

/// `(width, height)` from the frame header.
pub(super) fn size(bytes: &[u8], path: &Path) -> Result<(usize, usize), ImageError> {
    run(path, || Ok(Decompress::new_mem(bytes)?.size()))
}

pub(super) fn decode(
    bytes: &[u8],
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageError> {
    let mut header = run(path, || Decompress::new_mem(bytes))?;
    let (width, height) = header.size();
    limits.check(width, height, path)?;
    let components = header.components().len();
    header.dct_method(DctMethod::IntegerSlow);
    header.do_fancy_upsampling(true);
    header.do_block_smoothing(true);
    let out_space = match components {
        1 | 3 => ColorSpace::JCS_RGB,
        4 => ColorSpace::JCS_CMYK,
        n => {
            return Err(decode_error(
                path,
                format!("a JPEG with {n} components (expected 1, 3 or 4, as PIL)"),
            ))
        }
    };
    let samples = run(path, || {
        let mut started = header.to_colorspace(out_space)?;
        let samples: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        Ok(samples)
    })?;
    let pixels = if components == 4 {
        cmyk_to_rgb_as_pil(&samples)
    } else {
        samples
    };
    RgbImage::from_pixels(width, height, pixels)
        .ok_or_else(|| decode_error(path, "libjpeg returned fewer rows than the header gives"))
}

/// libjpeg's CMYK output → RGB exactly as PIL does it: PIL stores a JPEG's CMYK inverted
/// (rawmode "CMYK;I", Adobe's convention, for every 4-component JPEG), then `convert("RGB")`
/// computes `255 - k - c * (255 - k) / 255` per channel with its rounded integer division
/// `MULDIV255`. With `c = 255 - c'` and `k = 255 - k'` (`'` = libjpeg's samples) that is
/// `k' - muldiv255(255 - c', k')`.
pub(super) fn cmyk_to_rgb_as_pil(cmyk: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let nk = p[3] as u32; // 255 - k, with k = 255 - p[3]
        for &c in &p[..3] {
            rgb.push((nk - muldiv255(255 - c as u32, nk)) as u8);
        }
    }
    rgb
}
