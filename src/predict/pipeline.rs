//! A detector over a list of image files, decoding overlapped with the model: a decoding thread
//! reads, decodes, resizes, normalises and pads the next images while the model runs on the
//! current one (torchvision's reference scripts get the same overlap from a `DataLoader`'s
//! worker processes). A bounded channel holds at most [`QUEUED_IMAGES`] prepared images, so
//! memory does not grow with the number of images. The model runs on the calling thread, its
//! CPU kernels on every core, and the results come back in input order.
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use datasets::image::{load_rgb_with_limits, DecodeLimits, RgbImage};
use datasets::transforms::{batch_images, transform_image, TransformConfig};

use crate::model::faster_rcnn::FasterRcnn;
use crate::output::detection::Detection;
use crate::profile::{Stage, StageClock};
use heads::ops::transfer;

/// Prepared images waiting for the model: enough that the model never waits on a decode.
pub const QUEUED_IMAGES: usize = 2;

/// One image ready for the model: `[3, H, W]` pixels resized, normalised and padded.
pub struct PreparedImage {
    /// `3 * padded.0 * padded.1` values.
    pixels: Vec<f32>,
    /// `(H, W)` after padding to the model's `size_divisible`.
    padded: (usize, usize),
    /// `(height, width)` after resizing, before padding.
    size: (usize, usize),
    /// `(height, width)` of the decoded file.
    original_size: (usize, usize),
}

/// Resizes the image to the model's eval size (the last `min_size`), normalises it and pads
/// it to `size_divisible`: torchvision's `GeneralizedRCNNTransform` on a batch of one.
pub fn prepare_image(
    transform: &TransformConfig,
    image: &RgbImage,
) -> anyhow::Result<PreparedImage> {
    let min_size = *transform
        .min_size
        .last()
        .context("the model's transform has no min_size")?;
    let transformed = transform_image(transform, image, &[], min_size, false);
    let (size, original_size) = (transformed.size, transformed.original_size);
    let (pixels, padded) = batch_images(&[transformed], transform.size_divisible);
    Ok(PreparedImage {
        pixels,
        padded,
        size,
        original_size,
    })
}

/// The model on one prepared image; boxes in the original image's pixels.
pub fn detect_prepared(
    model: &FasterRcnn,
    image: PreparedImage,
    device: &Device,
) -> anyhow::Result<Vec<Detection>> {
    detect_prepared_timed(model, image, device, &mut StageClock::off())
}

/// [`detect_prepared`] with a lap of `clock` after each stage (`--profile`).
pub fn detect_prepared_timed(
    model: &FasterRcnn,
    image: PreparedImage,
    device: &Device,
    clock: &mut StageClock,
) -> anyhow::Result<Vec<Detection>> {
    let (height, width) = image.padded;
    let images = transfer::upload(image.pixels, (1, 3, height, width), device)?; // [1, 3, H, W]
    clock.lap(Stage::Data)?;
    let per_image = model.detect_timed(&images, &[image.size], &[image.original_size], clock)?;
    let d = per_image
        .first()
        .context("the detector returned no result")?;
    Detection::from_tensors(&d.boxes, &d.scores, &d.labels)
}

/// One image through the whole detector: [`prepare_image`] then [`detect_prepared`].
pub fn detect_image(
    model: &FasterRcnn,
    image: &RgbImage,
    device: &Device,
) -> anyhow::Result<Vec<Detection>> {
    detect_prepared(
        model,
        prepare_image(&model.config().transform, image)?,
        device,
    )
}

/// Images handled by [`predict_files`] and the wall time they took.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Images decoded and run through the model without error.
    pub images: usize,
    /// From the first read to the last image handled, in seconds.
    pub seconds: f64,
}

impl Throughput {
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// A decoded image (kept for drawing) and its prepared form, or why it could not be read.
type Decoded = anyhow::Result<(RgbImage, PreparedImage)>;

/// Runs `model` on every file of `paths`, in order. `each(index, result)` receives the decoded
/// image and its detections, or the error of that image (read, decode or model); an error
/// returned by `each` stops the run. With `profile`, each image's stage times and transfers
/// are printed to stderr (`--profile`; "data" is the wait for the decoded image and its
/// upload).
pub fn predict_files(
    model: &FasterRcnn,
    paths: &[PathBuf],
    limits: &DecodeLimits,
    device: &Device,
    profile: bool,
    mut each: impl FnMut(usize, anyhow::Result<(RgbImage, Vec<Detection>)>) -> anyhow::Result<()>,
) -> anyhow::Result<Throughput> {
    let start = Instant::now();
    let transform = &model.config().transform;
    let mut images = 0;
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<Decoded>(QUEUED_IMAGES);
        let decoder = scope.spawn(move || decode_all(paths, limits, transform, sender));
        // The receiver is dropped when this returns, early or not: the decoder then stops.
        let mut run = |receiver: Receiver<Decoded>| -> anyhow::Result<()> {
            for (index, path) in paths.iter().enumerate() {
                let mut clock = StageClock::start(profile, device);
                let decoded = receiver
                    .recv()
                    .context("the decoding thread stopped before the last image")?;
                let result = decoded.and_then(|(image, prepared)| {
                    let detections = detect_prepared_timed(model, prepared, device, &mut clock)
                        .with_context(|| format!("running the detector on `{}`", path.display()))?;
                    Ok((image, detections))
                });
                if let (Some(p), true) = (clock.finish(), result.is_ok()) {
                    eprintln!("profile image {} (`{}`): {p}", index + 1, path.display());
                }
                images += usize::from(result.is_ok());
                each(index, result)?;
            }
            Ok(())
        };
        let result = run(receiver);
        match decoder.join() {
            Ok(()) => result,
            Err(_) => Err(anyhow::anyhow!("the decoding thread panicked")),
        }
    })?;
    Ok(Throughput {
        images,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The decoding thread: each file read, decoded and prepared in order, until the receiver
/// is gone.
fn decode_all(
    paths: &[PathBuf],
    limits: &DecodeLimits,
    transform: &TransformConfig,
    sender: SyncSender<Decoded>,
) {
    for path in paths {
        let decoded = load_rgb_with_limits(path, limits)
            .map_err(anyhow::Error::from)
            .and_then(|image| {
                let prepared = prepare_image(transform, &image)?;
                Ok((image, prepared))
            });
        if sender.send(decoded).is_err() {
            return;
        }
    }
}
