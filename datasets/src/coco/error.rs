//! Errors from reading COCO annotation and results files.
use std::path::PathBuf;

use thiserror::Error;

/// What went wrong reading a COCO file. Every variant names the file (`source`) and, where one
/// exists, the record (annotation id, result index) and the offending value.
#[derive(Debug, Error)]
pub enum CocoError {
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{source_name}: malformed COCO JSON at line {line}, column {column}: {message}")]
    Json {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{source_name}: annotation {annotation_id} refers to unknown image id {image_id}")]
    UnknownImage {
        source_name: String,
        annotation_id: u64,
        image_id: u64,
    },
    #[error(
        "{source_name}: annotation {annotation_id} refers to unknown category id {category_id}"
    )]
    UnknownCategory {
        source_name: String,
        annotation_id: u64,
        category_id: u64,
    },
    #[error("{source_name}: duplicate {kind} id {id}")]
    DuplicateId {
        source_name: String,
        kind: &'static str,
        id: u64,
    },
    #[error("{source_name}: annotation {annotation_id} has a non-finite bbox {bbox:?}")]
    BadBox {
        source_name: String,
        annotation_id: u64,
        bbox: [f64; 4],
    },
}

impl CocoError {
    /// Wraps a serde_json error with the file name and the error's line and column.
    pub(crate) fn json(source_name: &str, error: serde_json::Error) -> Self {
        CocoError::Json {
            source_name: source_name.to_string(),
            line: error.line(),
            column: error.column(),
            // serde_json's message ends with " at line L column C": keep only the cause.
            message: match error.to_string().rsplit_once(" at line ") {
                Some((cause, _)) => cause.to_string(),
                None => error.to_string(),
            },
        }
    }
}
