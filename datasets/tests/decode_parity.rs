//! Decoded pixels equal PIL's `Image.open(path).convert("RGB")`, which torchvision sees: every
//! real COCO JPEG of ../shared/data by SHA-256 of its RGB bytes, and small PNGs and JPEGs (every
//! PNG layout, chroma subsamplings, progressive, CMYK, EXIF-rotated) byte for byte.
//!
//! Fixtures: `scripts/make_decode_fixtures.py` (its header gives the command). Exact equality,
//! no tolerance: both sides run libjpeg-turbo's integer decoder with the same settings, and PNG
//! is lossless.
mod common;
use common::shared_data;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datasets::image::load_rgb;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode")
}

fn json(name: &str) -> BTreeMap<String, Value> {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

#[test]
fn every_shared_coco_jpeg_has_pils_pixels() {
    let Some(data) = shared_data() else { return };
    let expected = json("coco_jpeg_sha256.json");
    // The fixture covers every JPEG there is (208: coco128 + coco_val80).
    let mut on_disk = Vec::new();
    for set in ["coco128", "coco_val80"] {
        for entry in std::fs::read_dir(data.join(set).join("images")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".jpg") {
                on_disk.push(format!("{set}/{name}"));
            }
        }
    }
    on_disk.sort();
    assert_eq!(on_disk, expected.keys().cloned().collect::<Vec<_>>());
    assert_eq!(on_disk.len(), 208);

    let dump = Path::new(env!("CARGO_TARGET_TMPDIR")).join("decode-mismatch");
    let _ = std::fs::remove_dir_all(&dump);
    let mut differing = Vec::new();
    for (key, want) in &expected {
        let (set, name) = key.split_once('/').unwrap();
        let image = load_rgb(&data.join(set).join("images").join(name)).unwrap();
        let size = (image.width as u64, image.height as u64);
        let want_size = (
            want["width"].as_u64().unwrap(),
            want["height"].as_u64().unwrap(),
        );
        let hash = format!("{:x}", Sha256::digest(&image.pixels));
        if size != want_size || hash != want["sha256"].as_str().unwrap() {
            // Our pixels, for `make_decode_fixtures.py --compare` to measure against PIL.
            std::fs::create_dir_all(&dump).unwrap();
            let file = dump.join(format!("{}.rgb", key.replace('/', "__")));
            std::fs::write(file, &image.pixels).unwrap();
            differing.push(key.clone());
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} images differ from PIL: {differing:?}\nmeasure with: \
         python scripts/make_decode_fixtures.py --compare {}",
        differing.len(),
        expected.len(),
        dump.display()
    );
}

/// Decodes a small fixture and compares it with PIL's bytes, naming the first differing pixel.
fn assert_pils_pixels(name: &str) {
    let small = json("small.json");
    let want = &small[name];
    let image = load_rgb(&fixtures().join(name)).unwrap();
    let size = (image.width as u64, image.height as u64);
    let want_size = (
        want["width"].as_u64().unwrap(),
        want["height"].as_u64().unwrap(),
    );
    assert_eq!(size, want_size, "{name}: width x height");
    let hex = want["rgb_hex"].as_str().unwrap();
    let want: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    if let Some(i) = (0..want.len()).find(|&i| image.pixels[i] != want[i]) {
        let p = i / 3 * 3;
        panic!(
            "{name}: pixel ({}, {}) is {:?}, PIL has {:?}",
            i / 3 % image.width,
            i / 3 / image.width,
            &image.pixels[p..p + 3],
            &want[p..p + 3]
        );
    }
}

#[test]
fn pngs_of_every_layout_have_pils_pixels() {
    for name in [
        "rgb8.png",
        "rgb16.png",
        "rgba8.png",
        "rgba16.png",
        "grey8.png",
        "grey16.png",
        "grey16_low.png",
        "grey_alpha8.png",
        "grey_alpha16.png",
        "grey1.png",
        "palette_trns.png",
    ] {
        assert_pils_pixels(name);
    }
}

#[test]
fn interlaced_pngs_have_pils_pixels() {
    assert_pils_pixels("interlaced_rgb8.png");
    assert_pils_pixels("interlaced_rgba16.png");
}

#[test]
fn jpegs_of_each_subsampling_and_progressive_have_pils_pixels() {
    for name in ["ycc420.jpg", "ycc422.jpg", "ycc444.jpg", "progressive.jpg"] {
        assert_pils_pixels(name);
    }
}

#[test]
fn cmyk_jpeg_has_pils_pixels() {
    assert_pils_pixels("cmyk.jpg");
}

/// torchvision's references load with PIL, which does not apply EXIF orientation: the image
/// keeps its stored 30x20 pixels although its Orientation tag (6) says "rotate 90° to show".
#[test]
fn exif_rotated_jpeg_is_not_rotated_as_in_torchvision() {
    let bytes = std::fs::read(fixtures().join("exif_rotated.jpg")).unwrap();
    assert!(
        bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "has an EXIF block"
    );
    assert_pils_pixels("exif_rotated.jpg");
    let image = load_rgb(&fixtures().join("exif_rotated.jpg")).unwrap();
    assert_eq!((image.width, image.height), (30, 20));
}
