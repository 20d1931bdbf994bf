//! Errors from reading results files and feeding detections to the evaluator.
use std::path::PathBuf;

use thiserror::Error;

/// What went wrong; each variant names the source (file or "detections") and the record.
#[derive(Debug, Error)]
pub enum EvalError {
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{source_name}: malformed results JSON at line {line}, column {column}: {message}")]
    Json {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{source_name}: detection {index} has image id {image_id}, which is not in the annotations \
         (pycocotools refuses such results too)"
    )]
    UnknownImage {
        source_name: String,
        index: usize,
        image_id: u64,
    },
    #[error(
        "{source_name}: detection {index} has category id {category_id}, which is not a category \
         of the annotations"
    )]
    UnknownCategory {
        source_name: String,
        index: usize,
        category_id: u64,
    },
    #[error(
        "{source_name}: detection {index} has a non-finite value: bbox {bbox:?}, score {score}"
    )]
    NonFinite {
        source_name: String,
        index: usize,
        bbox: [f64; 4],
        score: f64,
    },
}
