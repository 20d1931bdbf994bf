//! What a batch job shares with the loader and returns: the dataset's items, the transform and
//! settings, and the batch or the error that ended it.
use std::sync::Arc;

use thiserror::Error;

use super::batch::Batch;
use super::config::{LoaderConfig, Mode};
use crate::coco::ImageId;
use crate::dataset::Dataset;
use crate::image::ImageError;
use crate::transforms::TransformConfig;

/// Why a batch could not be produced.
#[derive(Debug, Error)]
pub enum LoaderError {
    #[error("image id {image_id} (record {record} of the annotations): {source}")]
    Image {
        image_id: ImageId,
        record: usize,
        #[source]
        source: ImageError,
    },
    #[error("cannot build the batch tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("a loader worker thread stopped unexpectedly")]
    WorkerStopped,
}

/// What every batch job of a loader reads.
pub(crate) struct Shared {
    pub(crate) dataset: Arc<Dataset>,
    pub(crate) items: Vec<Item>,
    pub(crate) transform: TransformConfig,
    pub(crate) config: LoaderConfig,
    pub(crate) mode: Mode,
}

/// One image's record: position in the dataset and its targets in original pixels.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) record: usize,
    pub(crate) image_id: ImageId,
    pub(crate) boxes: Vec<[f32; 4]>,
    pub(crate) labels: Vec<u32>,
}

/// What a job produced: a batch (None when every image was skipped) and skipped messages.
pub(crate) type JobOutput = (Result<Option<Batch>, LoaderError>, Vec<String>);
