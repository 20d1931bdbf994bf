//! Image decoding and bad input: real COCO JPEGs (grayscale included), and missing,
//! corrupt, truncated or wrongly sized files, each reported with the file and the record.
mod common;
use common::shared_data;
use std::path::PathBuf;
use std::sync::Arc;

use datasets::dataset::Dataset;
use datasets::image::{load_rgb, load_rgb_checked, DecodeLimits, ImageError};
use datasets::loader::{DataLoader, LoaderConfig, LoaderError, Mode};
use datasets::transforms::TransformConfig;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("detect-images-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn grayscale_image_86_decodes_to_rgb() {
    let Some(data) = shared_data() else { return };
    let path = data.join("coco128/images/000000000086.jpg");
    let image = load_rgb_checked(&path, 512, 640, &DecodeLimits::default()).unwrap();
    assert_eq!(image.pixels.len(), 512 * 640 * 3);
    assert!(image.pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    assert!(image.pixels.chunks(3).any(|p| p[0] != image.pixels[0]));
}

#[test]
fn every_coco128_image_decodes_at_its_annotated_size() {
    let Some(data) = shared_data() else { return };
    let dataset = Dataset::from_files(
        &data.join("coco128/annotations.json"),
        &data.join("coco128/images"),
    )
    .unwrap();
    assert_eq!(dataset.len(), 128);
    for i in 0..dataset.len() {
        let image = dataset.load_image(i).unwrap();
        let info = &dataset.coco.images[i];
        assert_eq!(
            (image.width, image.height),
            (info.width as usize, info.height as usize)
        );
    }
}

/// A two-image COCO file in a temp folder: `good.jpg` (a real photo) and `bad.jpg`.
fn dataset_with_bad_image(
    name: &str,
    bad: Option<&[u8]>,
    bad_width: u32,
) -> Option<(PathBuf, Dataset)> {
    let data = shared_data()?;
    let dir = temp_dir(name);
    let photo = std::fs::read(data.join("coco128/images/000000000009.jpg")).unwrap();
    std::fs::write(dir.join("good.jpg"), &photo).unwrap();
    if let Some(bytes) = bad {
        std::fs::write(dir.join("bad.jpg"), bytes).unwrap();
    }
    let json = format!(
        r#"{{"images": [{{"id": 1, "file_name": "good.jpg", "width": 640, "height": 480}},
                        {{"id": 7, "file_name": "bad.jpg", "width": {bad_width}, "height": 480}}],
            "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 60], "area": 3000, "iscrowd": 0}},
                            {{"id": 2, "image_id": 7, "category_id": 1, "bbox": [10, 10, 50, 60], "area": 3000, "iscrowd": 0}}],
            "categories": [{{"id": 1, "name": "thing"}}]}}"#
    );
    std::fs::write(dir.join("ann.json"), json).unwrap();
    let dataset = Dataset::from_files(&dir.join("ann.json"), &dir).unwrap();
    Some((dir, dataset))
}

fn eval_error(dataset: Dataset, skip: bool) -> (Vec<Result<Vec<u64>, String>>, usize) {
    let map = dataset.coco.category_map();
    let config = LoaderConfig {
        batch_size: 1,
        num_workers: 2,
        skip_bad_images: skip,
        ..LoaderConfig::default()
    };
    let transform = TransformConfig {
        min_size: vec![64],
        max_size: 100,
        ..TransformConfig::default()
    };
    let loader = DataLoader::new(Arc::new(dataset), &map, transform, config, Mode::Eval);
    let mut epoch = loader.epoch(0);
    let results: Vec<_> = epoch
        .by_ref()
        .map(|r| r.map(|b| b.image_ids).map_err(|e| e.to_string()))
        .collect();
    (results, epoch.skipped())
}

#[test]
fn missing_image_is_an_error_naming_file_and_record() {
    let Some((dir, dataset)) = dataset_with_bad_image("missing", None, 640) else {
        return;
    };
    let (results, _) = eval_error(dataset, false);
    assert_eq!(results[0], Ok(vec![1]));
    let err = results[1].as_ref().unwrap_err();
    assert!(
        err.contains("image id 7") && err.contains(&dir.join("bad.jpg").display().to_string()),
        "{err}"
    );
    assert_eq!(results.len(), 2, "the epoch ends at the error");
}

#[test]
fn corrupt_jpeg_is_an_error_naming_the_file() {
    let Some(data) = shared_data() else { return };
    let photo = std::fs::read(data.join("coco128/images/000000000009.jpg")).unwrap();
    // Not an image at all, and a JPEG cut inside its headers.
    for (name, bytes) in [
        ("garbage", b"GIF89a nonsense".to_vec()),
        ("headers", photo[..300].to_vec()),
    ] {
        let Some((_, dataset)) = dataset_with_bad_image(name, Some(&bytes), 640) else {
            return;
        };
        let (results, _) = eval_error(dataset, false);
        let err = results[1].as_ref().unwrap_err();
        assert!(
            err.contains("bad.jpg") && err.contains("image id 7"),
            "{name}: {err}"
        );
    }
}

#[test]
fn truncated_jpeg_is_an_error_naming_the_file() {
    let Some(data) = shared_data() else { return };
    let photo = std::fs::read(data.join("coco128/images/000000000009.jpg")).unwrap();
    let dir = temp_dir("truncated");
    let path = dir.join("half.jpg");
    std::fs::write(&path, &photo[..photo.len() / 2]).unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("half.jpg"), "{err}");
}

#[test]
fn data_appended_after_the_end_marker_is_not_truncation() {
    let Some(data) = shared_data() else { return };
    let mut photo = std::fs::read(data.join("coco128/images/000000000009.jpg")).unwrap();
    let clean = load_rgb(&data.join("coco128/images/000000000009.jpg")).unwrap();
    photo.extend_from_slice(&[0x55; 4096]); // e.g. a phone's trailer after EOI
    let dir = temp_dir("trailer");
    std::fs::write(dir.join("trailer.jpg"), &photo).unwrap();
    assert_eq!(load_rgb(&dir.join("trailer.jpg")).unwrap(), clean);
}

#[test]
fn size_mismatch_is_an_error_naming_file_and_sizes() {
    let Some(data) = shared_data() else { return };
    let photo = std::fs::read(data.join("coco128/images/000000000009.jpg")).unwrap();
    let Some((_, dataset)) = dataset_with_bad_image("size", Some(&photo), 600) else {
        return;
    };
    let (results, _) = eval_error(dataset, false);
    let err = results[1].as_ref().unwrap_err();
    assert!(
        err.contains("bad.jpg") && err.contains("640x480") && err.contains("600x480"),
        "{err}"
    );
}

#[test]
fn skip_bad_images_counts_instead_of_failing() {
    let Some((_, dataset)) = dataset_with_bad_image("skip", Some(b"junk"), 640) else {
        return;
    };
    let (results, skipped) = eval_error(dataset, true);
    assert_eq!(results, vec![Ok(vec![1])]);
    assert_eq!(skipped, 1);
}

#[test]
fn loader_error_is_typed() {
    let Some((_, dataset)) = dataset_with_bad_image("typed", None, 640) else {
        return;
    };
    let map = dataset.coco.category_map();
    let config = LoaderConfig {
        batch_size: 2,
        num_workers: 0,
        ..LoaderConfig::default()
    };
    let loader = DataLoader::new(
        Arc::new(dataset),
        &map,
        TransformConfig::default(),
        config,
        Mode::Eval,
    );
    let err = loader.epoch(0).next().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            LoaderError::Image {
                image_id: 7,
                record: 1,
                source: ImageError::Read { .. }
            }
        ),
        "{err}"
    );
}
