//! `detect predict IMAGE... [--weights FILE] [--backbone NAME]`: load a detector
//! ([`crate::weights::load`]), run it on each image at the model's own transform (torchvision's
//! `GeneralizedRCNNTransform`, eval size = the last `min_size`), then print, draw and collect
//! the detections ([`crate::output::predict_output`]). Without `--weights`, the newest
//! `runs/*/model_final.safetensors` under the current directory. An image that cannot be read
//! or run is reported and skipped; the others are still printed, drawn and written, and the
//! command ends with the list of failures (exit code 2).
use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use datasets::image::RgbImage;
use datasets::transforms::{batch_images, transform_image};

use crate::cli::PredictArgs;
use crate::commands::parse_device;
use crate::model::faster_rcnn::FasterRcnn;
use crate::output::detection::Detection;
use crate::output::predict_output::PredictOutput;
use crate::report::error_chain;
use crate::weights::discovery::resolve_weights;
use crate::weights::load::load_detector;

/// Runs `detect predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.score_threshold),
        "--score-threshold must be in [0, 1], got {}",
        args.score_threshold
    );
    let device = parse_device(&args.device)?;
    let weights = resolve_weights(args.weights.as_deref())?;
    let loaded = load_detector(
        &weights,
        args.backbone.as_deref(),
        args.categories.as_deref(),
        &device,
    )?;
    let config = loaded.model.config();
    eprintln!(
        "loaded `{}`: {} Faster R-CNN, {} classes",
        weights.path.display(),
        config.backbone_name,
        config.num_classes
    );
    let mut output = PredictOutput::new(
        &args.images,
        args.output.as_deref(),
        args.json.as_deref(),
        args.score_threshold,
    )?;
    // A bad image does not stop the others: its error is printed, the run goes on, and the
    // failures are listed once more at the end (exit code 2) after the outputs are written.
    let mut failures = Vec::new();
    for (index, path) in args.images.iter().enumerate() {
        let done = datasets::image::load_rgb(path)
            .map_err(anyhow::Error::from)
            .and_then(|image| {
                let detections = detect_image(&loaded.model, &image, &device)
                    .with_context(|| format!("running the detector on `{}`", path.display()))?;
                output.add_image(index, &to_image_crate(image)?, &detections, &loaded.labels)
            });
        if let Err(err) = done {
            let message = error_chain(&err);
            eprintln!("error: {message} (going on with the other images)");
            failures.push(message);
        }
    }
    output.finish()?;
    if !failures.is_empty() {
        bail!(
            "{} of {} images failed:\n  {}",
            failures.len(),
            args.images.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// One image through the whole detector: transform (resize to the model's eval size,
/// normalise, pad to `size_divisible`), detect, boxes in the original image's pixels.
pub fn detect_image(
    model: &FasterRcnn,
    image: &RgbImage,
    device: &Device,
) -> anyhow::Result<Vec<Detection>> {
    let transform = &model.config().transform;
    let min_size = *transform
        .min_size
        .last()
        .context("the model's transform has no min_size")?;
    let transformed = transform_image(transform, image, &[], min_size, false);
    let (size, original_size) = (transformed.size, transformed.original_size);
    let (pixels, (height, width)) = batch_images(&[transformed], transform.size_divisible);
    let images = Tensor::from_vec(pixels, (1, 3, height, width), device)?; // [1, 3, H, W]
    let per_image = model.detect(&images, &[size], &[original_size])?;
    let d = per_image
        .first()
        .context("the detector returned no result")?;
    Detection::from_tensors(&d.boxes, &d.scores, &d.labels)
}

/// Our decoded image as the `image` crate's, for drawing.
fn to_image_crate(image: RgbImage) -> anyhow::Result<image::RgbImage> {
    let (width, height) = (image.width as u32, image.height as u32);
    image::RgbImage::from_raw(width, height, image.pixels)
        .context("decoded image has the wrong number of pixels")
}
