use super::jpeg::cmyk_to_rgb_as_pil;
use super::jpeg_markers::jpeg_is_complete;
use super::*;

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decode")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

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
        0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 0, 2, 1, 0xFF, 0, 2, 0xFF, 0xD0, 3,
        0xFF, 0xD9, 7, 7,
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

#[test]
fn cmyk_conversion_follows_pils_integer_formula() {
    // libjpeg samples (c', m', y', k'); PIL inverts them (c = 255 - c') and computes
    // 255 - k - round(c * (255 - k) / 255). Worked by hand:
    // - k' = 255 (k = 0): c' = 0 is full cyan → R 0; c' = 255 → 255; y' = 127 → 127.
    // - k' = 0 (k = 255): black whatever c', m', y'.
    // - c' = 127, k' = 128: 128 - (128 * 128 + 128 + ((128 * 128 + 128) >> 8)) >> 8
    //   = 128 - (16512 + 64) / 256 = 128 - 64 = 64 (exact value 128 * 127 / 255 = 63.75).
    let cmyk = [0, 255, 127, 255, 200, 10, 90, 0, 127, 127, 127, 128];
    assert_eq!(
        cmyk_to_rgb_as_pil(&cmyk),
        vec![0, 255, 127, 0, 0, 0, 64, 64, 64]
    );
}

#[test]
fn image_size_reads_the_header_of_jpeg_and_png() {
    let (path, bytes) = fixture("ycc420.jpg");
    assert_eq!(image_size(&bytes, &path).unwrap(), (37, 23));
    let (path, bytes) = fixture("rgb16.png");
    assert_eq!(image_size(&bytes, &path).unwrap(), (13, 9));
    // The headers alone are enough: cut where the scan's data begins.
    let (path, bytes) = fixture("ycc420.jpg");
    let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let data = sos + 2 + u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]) as usize;
    assert_eq!(image_size(&bytes[..data], &path).unwrap(), (37, 23));
}

#[test]
fn pixel_limit_refuses_images_above_it_and_accepts_at_it() {
    for (name, pixels) in [("ycc420.jpg", 37 * 23), ("rgb8.png", 13 * 9)] {
        let (path, bytes) = fixture(name);
        let at = DecodeLimits { max_pixels: pixels };
        assert!(decode_rgb_with_limits(&bytes, &path, &at).is_ok(), "{name}");
        let below = DecodeLimits {
            max_pixels: pixels - 1,
        };
        let err = decode_rgb_with_limits(&bytes, &path, &below).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
        // The message says how to raise the limit.
        assert!(err.to_string().contains("--max-image-pixels"), "{err}");
    }
    assert_eq!(DecodeLimits::default().max_pixels, 178_956_970);
}

#[test]
fn jpeg_error_from_libjpeg_is_an_error_naming_the_file() {
    // Image width 0 in the SOF0 header (bytes 7-8 after the marker): libjpeg's error_exit.
    let (path, mut bytes) = fixture("ycc420.jpg");
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 7] = 0;
    bytes[sof + 8] = 0;
    let err = decode_rgb(&bytes, &path).unwrap_err();
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("ycc420.jpg"), "{err}");
}

#[test]
fn damaged_jpeg_and_png_bytes_never_panic() {
    // Every single-byte change in the headers and some of the data: decoding returns Ok
    // (libjpeg only warns about some damage, as PIL does) or an error naming the file.
    for name in [
        "ycc420.jpg",
        "progressive.jpg",
        "cmyk.jpg",
        "palette_trns.png",
    ] {
        let (path, bytes) = fixture(name);
        for i in 2..bytes.len().min(700) {
            for value in [0x00, 0xFF, bytes[i] ^ 0x55] {
                let mut damaged = bytes.clone();
                damaged[i] = value;
                if let Err(err) = decode_rgb(&damaged, &path) {
                    assert!(err.to_string().contains(name), "{name} byte {i}: {err}");
                }
            }
        }
    }
}
