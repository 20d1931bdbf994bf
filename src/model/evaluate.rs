//! Running a detector over a dataset: the shared core of `detect eval --weights` and of the
//! periodic evaluation during training.
use heads::ops::transfer;
use std::sync::Arc;

use anyhow::Context;
use candle_core::Device;
use datasets::coco::CategoryMap;
use datasets::dataset::Dataset;
use datasets::eval::{CocoEvaluator, CocoMetrics, Detection};
use datasets::loader::{DataLoader, LoaderConfig, Mode, Shard};
use datasets::transforms::TransformConfig;
use heads::roi_heads::Detections;

use crate::model::faster_rcnn::FasterRcnn;

/// What a pass over a dataset produced.
pub struct EvalOutput {
    /// Every detection, in COCO category ids and original-image xywh pixels.
    pub detections: Vec<Detection>,
    pub metrics: CocoMetrics,
    /// Images the loader skipped (with `skip_bad_images`).
    pub skipped: Vec<String>,
}

/// Options of one evaluation pass.
pub struct EvalPass<'a> {
    pub dataset: Arc<Dataset>,
    /// Target rules (crowd, labels) of the loader: the dataset's own category map.
    pub dataset_categories: &'a CategoryMap,
    /// Model label → the dataset's category id (None: not a category of the dataset).
    pub category_of_label: &'a dyn Fn(u32) -> Option<u64>,
    pub transform: TransformConfig,
    pub batch_size: usize,
    pub skip_bad_images: bool,
    pub device: &'a Device,
    /// The part of each batch this process runs ([`Shard::WHOLE`], or a data-parallel rank's).
    pub shard: Shard,
}

/// Runs `model` over every image of the dataset and evaluates the detections with COCO AP.
/// `on_batch(done, total)` is called after each batch (for a progress bar).
pub fn evaluate(
    model: &FasterRcnn,
    pass: &EvalPass,
    on_batch: impl FnMut(usize, usize),
) -> anyhow::Result<EvalOutput> {
    let (detections, skipped) = detect_all(model, pass, on_batch)?;
    Ok(EvalOutput {
        metrics: coco_metrics(&pass.dataset, &detections)?,
        detections,
        skipped,
    })
}

/// COCO AP of `detections` (COCO results) on `dataset`.
pub fn coco_metrics(dataset: &Dataset, detections: &[Detection]) -> anyhow::Result<CocoMetrics> {
    let mut evaluator = CocoEvaluator::new(&dataset.coco);
    evaluator.add_detections(detections)?;
    Ok(evaluator.evaluate())
}

/// Runs `model` over the pass's shard of every batch: the detections as COCO results, and the
/// messages of skipped images.
pub fn detect_all(
    model: &FasterRcnn,
    pass: &EvalPass,
    mut on_batch: impl FnMut(usize, usize),
) -> anyhow::Result<(Vec<Detection>, Vec<String>)> {
    let loader = DataLoader::new(
        pass.dataset.clone(),
        pass.dataset_categories,
        pass.transform.clone(),
        LoaderConfig {
            batch_size: pass.batch_size.max(1),
            skip_bad_images: pass.skip_bad_images,
            shard: pass.shard,
            ..LoaderConfig::default()
        },
        Mode::Eval,
    );
    let mut batches = loader.epoch(0);
    let total = batches.len();
    let mut detections = Vec::new();
    let mut done = 0;
    for batch in batches.by_ref() {
        let batch = batch?;
        let images = heads::ops::transfer::to_device(&batch.images, pass.device)?;
        let per_image = model
            .detect(&images, &batch.image_sizes, &batch.original_sizes)
            .context("running the detector")?;
        for (image_id, d) in batch.image_ids.iter().zip(&per_image) {
            detections.extend(to_coco(*image_id, d, pass.category_of_label)?);
        }
        done += 1;
        on_batch(done, total);
    }
    let skipped = batches.skipped_messages().to_vec();
    Ok((detections, skipped))
}

/// One image's detections as COCO results (labels mapped to category ids; detections whose
/// label is no category of the dataset are left out).
pub fn to_coco(
    image_id: u64,
    d: &Detections,
    category_of_label: &dyn Fn(u32) -> Option<u64>,
) -> anyhow::Result<Vec<Detection>> {
    let read = "detections: output";
    let boxes = transfer::read_rows::<f32>(read, &d.boxes)?;
    let scores = transfer::read::<f32>(read, &d.scores)?;
    let labels = transfer::read::<u32>(read, &d.labels)?;
    Ok(boxes
        .iter()
        .zip(scores.iter().zip(&labels))
        .filter_map(|(b, (&score, &label))| {
            let [x1, y1, x2, y2] = [b[0], b[1], b[2], b[3]].map(f64::from);
            Some(Detection {
                image_id,
                category_id: category_of_label(label)?,
                bbox: [x1, y1, x2 - x1, y2 - y1],
                score: f64::from(score),
            })
        })
        .collect())
}
