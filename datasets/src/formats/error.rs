//! Errors from reading Pascal VOC and YOLO datasets. Every variant names the file and, where
//! there is one, the line, and says what was expected.
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FormatError {
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{path}:{line}:{column}: malformed XML: {message}")]
    Xml {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    /// A VOC annotation that parses as XML but breaks the VOC schema.
    #[error("{path}:{line}: {message}")]
    Voc {
        path: PathBuf,
        line: u32,
        message: String,
    },
    #[error(
        "no VOC root has ImageSets/Main/{split}.txt (looked in {roots}); splits found: {found}\n\
         hint: choose a split with --train-split/--val-split"
    )]
    MissingSplit {
        split: String,
        roots: String,
        found: String,
    },
    #[error("{path}:{line}: {message}")]
    SplitList {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}:{column}: malformed YAML: {message}")]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A data.yaml that parses but cannot describe a dataset.
    #[error("{path}: {message}")]
    YoloConfig { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    YoloLabel {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read the size of image {path}: {message}")]
    ImageHeader { path: PathBuf, message: String },
}

impl FormatError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            error,
        }
    }
}
