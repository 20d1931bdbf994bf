//! What `detect predict` does with a model's detections: print them, draw them, collect them
//! into a COCO results file. The model glue calls, for a list of images:
//!
//! ```ignore
//! let mut output = PredictOutput::new(&args.images, args.output.as_deref(), args.json.as_deref(),
//!                                     args.score_threshold)?;
//! for (index, path) in args.images.iter().enumerate() {
//!     let image = image::open(path)?.to_rgb8();           // the original image
//!     let detections: Vec<Detection> = /* model, boxes in original pixels */;
//!     output.add_image(index, &image, &detections, &labels)?;
//! }
//! output.finish()?;
//! ```
//!
//! - stdout: one line per detection, `FILE<TAB>NAME<TAB>SCORE<TAB>x1 y1 x2 y2` (data only);
//! - `--output DIR`: `DIR/<stem>.png` per image, with boxes, names and scores drawn (PNG keeps
//!   the text crisp); a repeated stem gets `<stem>-<n>.png`;
//! - `--json FILE`: a COCO results list (see [`crate::output::results`]), written once at the end.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use datasets::coco::CategoryMap;
use image::RgbImage;

use crate::atomic::write_atomically;
use crate::output::detection::Detection;
use crate::output::draw::draw_detections;
use crate::output::results::{write_coco_results, CocoResult, ImageIds};

/// Printing, drawing and collecting the detections of one `detect predict` run.
#[derive(Debug)]
pub struct PredictOutput {
    images: Vec<PathBuf>,
    image_ids: Vec<u64>,
    /// The drawn image's path for each input image, when `--output` is given.
    drawn_paths: Option<Vec<PathBuf>>,
    json: Option<PathBuf>,
    score_threshold: f32,
    results: Vec<CocoResult>,
}

impl PredictOutput {
    /// Prepares the outputs for `images` (creates `output_dir`). With `json`, prints to stderr
    /// a note for each image whose `image_id` is not its numeric file stem.
    pub fn new(
        images: &[PathBuf],
        output_dir: Option<&Path>,
        json: Option<&Path>,
        score_threshold: f32,
    ) -> anyhow::Result<Self> {
        let image_ids = ImageIds::assign(images);
        if json.is_some() {
            for note in &image_ids.notes {
                eprintln!("note: {note}");
            }
        }
        let drawn_paths = match output_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the output folder `{}`", dir.display())
                })?;
                Some(drawn_image_paths(images, dir))
            }
            None => None,
        };
        Ok(Self {
            images: images.to_vec(),
            image_ids: image_ids.ids,
            drawn_paths,
            json: json.map(Path::to_path_buf),
            score_threshold,
            results: Vec::new(),
        })
    }

    /// Handles the detections of `images[index]`: keeps those scoring at least the threshold,
    /// prints them, draws them on `image` (the original, decoded image) and collects them.
    pub fn add_image(
        &mut self,
        index: usize,
        image: &RgbImage,
        detections: &[Detection],
        labels: &CategoryMap,
    ) -> anyhow::Result<()> {
        let path = self.images.get(index).with_context(|| {
            format!(
                "image index {index} out of range ({} images)",
                self.images.len()
            )
        })?;
        let kept: Vec<Detection> = detections
            .iter()
            .filter(|d| d.score >= self.score_threshold)
            .copied()
            .collect();
        let file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        for detection in &kept {
            let [x1, y1, x2, y2] = detection.box_xyxy;
            let name = labels.category(detection.label).name;
            println!(
                "{file_name}\t{name}\t{:.3}\t{x1:.1} {y1:.1} {x2:.1} {y2:.1}",
                detection.score
            );
        }
        if let Some(drawn_paths) = &self.drawn_paths {
            let mut drawn = image.clone();
            draw_detections(&mut drawn, &kept, labels);
            let out = &drawn_paths[index];
            write_atomically(out, |temporary| {
                drawn
                    .save_with_format(temporary, image::ImageFormat::Png)
                    .with_context(|| format!("cannot write `{}`", out.display()))
            })?;
        }
        if self.json.is_some() {
            let image_id = self.image_ids[index];
            self.results
                .extend(kept.iter().map(|d| CocoResult::new(image_id, d, labels)));
        }
        Ok(())
    }

    /// Writes the results file, if one was asked for.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Some(json) = &self.json {
            write_coco_results(json, &self.results)?;
            eprintln!(
                "wrote {} detections to `{}`",
                self.results.len(),
                json.display()
            );
        }
        Ok(())
    }
}

/// `dir/<stem>.png` for each image, `dir/<stem>-<n>.png` for the n-th repeat of a stem.
fn drawn_image_paths(images: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    images
        .iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned());
            let count = seen.entry(stem.clone()).or_insert(0);
            *count += 1;
            let name = if *count == 1 {
                format!("{stem}.png")
            } else {
                format!("{stem}-{count}.png")
            };
            dir.join(name)
        })
        .collect()
}

#[cfg(test)]
mod tests;
