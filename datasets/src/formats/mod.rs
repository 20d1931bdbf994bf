//! The annotation layouts besides COCO JSON, each read into the same [`CocoDataset`] records so
//! everything downstream (targets, loader, COCO evaluation) is shared:
//!
//! - [`voc`]: Pascal VOC roots (`Annotations/*.xml`, `ImageSets/Main/<split>.txt`,
//!   `JPEGImages/`), several joinable as VOC07+12; [`voc_xml`] parses one annotation file.
//! - [`yolo`]: an Ultralytics `data.yaml` with `labels/*.txt` beside `images/`.
//!
//! [`Layout::of`] tells the layouts apart from what `--annotations` names.
//!
//! [`CocoDataset`]: crate::coco::CocoDataset
mod error;
pub mod voc;
pub mod voc_xml;
pub mod yolo;

use std::path::Path;

pub use error::FormatError;
pub use voc::{read_voc, voc_box_to_xywh, VocSplit, VOC_CLASSES};
pub use yolo::read_yolo;

/// What an `--annotations` path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A COCO instances `.json` file (needs an image folder).
    Coco,
    /// A Pascal VOC root: a folder with `Annotations/`.
    Voc,
    /// A YOLO `data.yaml` (or `.yml`).
    Yolo,
}

impl Layout {
    /// The layout of `path`, or None when it is none of the three.
    pub fn of(path: &Path) -> Option<Layout> {
        if path.is_dir() {
            return voc::is_voc_root(path).then_some(Layout::Voc);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(Layout::Coco),
            Some("yaml" | "yml") => Some(Layout::Yolo),
            _ => None,
        }
    }
}

/// `(width, height)` of an image from its header, without decoding the pixels.
pub fn image_size(path: &Path) -> Result<(u32, u32), FormatError> {
    let error = |message: String| FormatError::ImageHeader {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let (width, height) =
        crate::image::image_size(&bytes, path).map_err(|e| error(e.to_string()))?;
    let narrow = |v: usize| u32::try_from(v).map_err(|_| error(format!("{v} pixels is too large")));
    Ok((narrow(width)?, narrow(height)?))
}

#[cfg(test)]
mod tests;
