//! Our GeneralizedRCNNTransform against torchvision's, on crops of real COCO photos.
//! Fixtures: `tests/fixtures/transforms/make_transform_fixtures.py` (see its docstring).
use std::path::{Path, PathBuf};

use datasets::image::load_rgb;
use datasets::transforms::{batch_images, transform_image, TransformConfig};
use serde_json::Value;

/// Per-value tolerance after normalisation (the bound). The two sides run the same f32
/// operations in a slightly different order (separable passes vs a 2-D blend), which moves
/// values by ~1e-6; a wrong index or weight moves them by >1e-2.
const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms")
}

fn as_boxes(v: &Value) -> Vec<[f32; 4]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let b: Vec<f32> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect()
}

fn as_pair(v: &Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

#[test]
fn matches_torchvision_generalized_rcnn_transform() {
    let dir = fixtures();
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let image = load_rgb(&dir.join(case["input"].as_str().unwrap())).unwrap();
        let min_size = case["min_size"].as_u64().unwrap() as usize;
        let config = TransformConfig {
            min_size: vec![min_size],
            max_size: case["max_size"].as_u64().unwrap() as usize,
            ..TransformConfig::default()
        };
        let flip = case["flip"].as_bool().unwrap();
        let boxes_in = as_boxes(&case["boxes_in"]);
        let t = transform_image(&config, &image, &boxes_in, min_size, flip);
        assert_eq!(t.original_size, as_pair(&case["original_size"]), "{name}");
        assert_eq!(
            t.size,
            as_pair(&case["resized_size"]),
            "{name}: resized size"
        );
        // Boxes: the same f32 operations, so bit-identical.
        assert_eq!(t.boxes, as_boxes(&case["boxes_out"]), "{name}: boxes");

        let (batch, padded) = batch_images(std::slice::from_ref(&t), config.size_divisible);
        assert_eq!(padded, as_pair(&case["padded_size"]), "{name}: padded size");
        let (ph, pw) = padded;
        let at = |c: usize, y: usize, x: usize| batch[(c * ph + y) * pw + x];

        if let Some(file) = case["whole"].as_str() {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let expected: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(expected.len(), batch.len(), "{name}");
            let mut worst = (0.0f32, 0);
            for (i, (a, b)) in batch.iter().zip(&expected).enumerate() {
                let d = (a - b).abs();
                if d > worst.0 {
                    worst = (d, i);
                }
            }
            eprintln!("{name}: max |diff| {}", worst.0);
            assert!(
                worst.0 <= TOL,
                "{name}: max |diff| {} at flat index {}",
                worst.0,
                worst.1
            );
        } else {
            for s in case["samples"].as_array().unwrap() {
                let (c, y, x) = (
                    s[0].as_u64().unwrap() as usize,
                    s[1].as_u64().unwrap() as usize,
                    s[2].as_u64().unwrap() as usize,
                );
                let want = s[3].as_f64().unwrap() as f32;
                let got = at(c, y, x);
                assert!(
                    (got - want).abs() <= TOL,
                    "{name}: [{c},{y},{x}] got {got} want {want}"
                );
            }
        }
        // Whole-tensor check: each channel's sum, within TOL per element on average.
        for (c, want) in case["channel_sums"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got: f64 = batch[c * ph * pw..(c + 1) * ph * pw]
                .iter()
                .map(|&v| v as f64)
                .sum();
            let bound = TOL as f64 * (ph * pw) as f64;
            assert!(
                (got - want).abs() <= bound,
                "{name}: channel {c} sum {got} vs {want}"
            );
        }
    }
}
