//! `detect predict IMAGE|FOLDER... [--weights FILE] [--backbone NAME]`: load a detector
//! ([`crate::weights::load`]), run it on each image ([`crate::predict`]: folders expanded to
//! their images in name order, decoding overlapped with the model) at the model's own
//! transform (torchvision's `GeneralizedRCNNTransform`, eval size = the last `min_size`), then
//! print, draw and collect the detections ([`crate::output::predict_output`]) and report the
//! images per second. Without `--weights`, the newest `runs/*/model_final.safetensors` under
//! the current directory. An image that cannot be read or run is reported and skipped; the
//! others are still printed, drawn and written, and the command ends with the list of failures
//! (exit code 2).
use anyhow::{bail, Context};

use crate::cli::PredictArgs;
use crate::commands::{decode_limits, parse_device};
use crate::output::predict_output::PredictOutput;
use crate::predict::inputs::image_paths;
use crate::predict::pipeline::predict_files;
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
    let limits = decode_limits(args.max_image_pixels)?;
    let images = image_paths(&args.images)?;
    let device = parse_device(&args.device)?;
    args.precision.apply();
    let weights = resolve_weights(args.weights.as_deref())?;
    let mut loaded = load_detector(
        &weights,
        args.backbone.as_deref(),
        args.categories.as_deref(),
        &device,
    )?;
    loaded.model.set_autocast(args.precision.autocast());
    let config = loaded.model.config();
    eprintln!(
        "loaded `{}`: {} Faster R-CNN, {} classes",
        weights.path.display(),
        config.backbone_name,
        config.num_classes
    );
    let mut output = PredictOutput::new(
        &images,
        args.output.as_deref(),
        args.json.as_deref(),
        args.score_threshold,
    )?;
    // A bad image does not stop the others: its error is printed, the run goes on, and the
    // failures are listed once more at the end (exit code 2) after the outputs are written.
    let mut failures = Vec::new();
    let throughput = predict_files(
        &loaded.model,
        &images,
        &limits,
        &device,
        args.profile,
        |index, result| {
            let done = result.and_then(|(image, detections)| {
                output.add_image(index, &to_image_crate(image)?, &detections, &loaded.labels)
            });
            if let Err(err) = done {
                let message = error_chain(&err);
                eprintln!("error: {message} (going on with the other images)");
                failures.push(message);
            }
            Ok(())
        },
    )?;
    output.finish()?;
    eprintln!(
        "{} image{} in {:.1} s: {:.3} images/s",
        throughput.images,
        if throughput.images == 1 { "" } else { "s" },
        throughput.seconds,
        throughput.images_per_second()
    );
    if !failures.is_empty() {
        bail!(
            "{} of {} images failed:\n  {}",
            failures.len(),
            images.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// Our decoded image as the `image` crate's, for drawing.
fn to_image_crate(image: datasets::image::RgbImage) -> anyhow::Result<image::RgbImage> {
    let (width, height) = (image.width as u32, image.height as u32);
    image::RgbImage::from_raw(width, height, image.pixels)
        .context("decoded image has the wrong number of pixels")
}
