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
//! - `--json FILE`: a COCO results list (see [`crate::results`]), written once at the end.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{DType, Tensor};
use image::RgbImage;

use crate::atomic_file::write_atomically;
use crate::draw::draw_detections;
use crate::labels::LabelMap;
use crate::results::{write_coco_results, CocoResult, ImageIds};

/// One detection, in the original image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`, continuous coordinates (no `+1`), original image pixels.
    pub box_xyxy: [f32; 4],
    /// Class probability in [0, 1].
    pub score: f32,
    /// The model's label (1.. ; 0 is background), mapped to a category by a [`LabelMap`].
    pub label: usize,
}

impl Detection {
    /// One image's detections from the model's tensors: `boxes [D, 4]` xyxy in original
    /// pixels (f32), `scores [D]` (f32), `labels [D]` (any integer dtype).
    pub fn from_tensors(
        boxes: &Tensor,
        scores: &Tensor,
        labels: &Tensor,
    ) -> anyhow::Result<Vec<Self>> {
        let boxes = boxes.to_dtype(DType::F32)?.to_vec2::<f32>()?; // [D, 4]
        let scores = scores.to_dtype(DType::F32)?.to_vec1::<f32>()?; // [D]
        let labels = labels.to_dtype(DType::I64)?.to_vec1::<i64>()?; // [D]
        anyhow::ensure!(
            boxes.len() == scores.len() && scores.len() == labels.len(),
            "detections disagree in count: {} boxes, {} scores, {} labels",
            boxes.len(),
            scores.len(),
            labels.len()
        );
        boxes
            .iter()
            .zip(scores.iter().zip(&labels))
            .map(|(b, (&score, &label))| {
                anyhow::ensure!(
                    b.len() == 4,
                    "boxes must be [D, 4], got rows of {}",
                    b.len()
                );
                anyhow::ensure!(label >= 0, "negative label {label}");
                Ok(Self {
                    box_xyxy: [b[0], b[1], b[2], b[3]],
                    score,
                    label: label as usize,
                })
            })
            .collect()
    }
}

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
        labels: &LabelMap,
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
mod tests {
    use super::*;

    #[test]
    fn detections_from_model_tensors() {
        let dev = candle_core::Device::Cpu;
        let boxes = Tensor::new(&[[1f32, 2., 3., 4.], [5., 6., 7., 8.]], &dev).unwrap();
        let scores = Tensor::new(&[0.9f32, 0.1], &dev).unwrap();
        let labels = Tensor::new(&[3u32, 1], &dev).unwrap();
        let detections = Detection::from_tensors(&boxes, &scores, &labels).unwrap();
        assert_eq!(
            detections[1],
            Detection {
                box_xyxy: [5., 6., 7., 8.],
                score: 0.1,
                label: 1
            }
        );
        let empty = Tensor::zeros((0, 4), DType::F32, &dev).unwrap();
        let none = Tensor::zeros(0, DType::F32, &dev).unwrap();
        assert!(Detection::from_tensors(&empty, &none, &none)
            .unwrap()
            .is_empty());
        assert!(Detection::from_tensors(&boxes, &none, &labels).is_err());
    }

    #[test]
    fn repeated_stems_get_distinct_drawn_files() {
        let images = [
            PathBuf::from("a/x.jpg"),
            PathBuf::from("b/x.jpg"),
            PathBuf::from("y.png"),
        ];
        let paths = drawn_image_paths(&images, Path::new("out"));
        assert_eq!(
            paths,
            [
                Path::new("out/x.png"),
                Path::new("out/x-2.png"),
                Path::new("out/y.png")
            ]
        );
    }

    #[test]
    fn writes_drawn_images_and_thresholded_results() {
        let dir = tempfile::tempdir().unwrap();
        let images = [
            PathBuf::from("in/000000000042.jpg"),
            PathBuf::from("in/cat.jpg"),
        ];
        let json = dir.path().join("dets.json");
        let out = dir.path().join("drawn");
        let mut output = PredictOutput::new(&images, Some(&out), Some(&json), 0.5).unwrap();
        let labels = LabelMap::coco_torchvision();
        let image = RgbImage::from_pixel(100, 80, image::Rgb([128, 128, 128]));
        let detections = [
            Detection {
                box_xyxy: [10.0, 30.0, 60.0, 70.0],
                score: 0.9,
                label: 17,
            },
            Detection {
                box_xyxy: [5.0, 5.0, 9.0, 9.0],
                score: 0.2,
                label: 1,
            },
        ];
        output.add_image(0, &image, &detections, &labels).unwrap();
        output.add_image(1, &image, &[], &labels).unwrap();
        assert!(output.add_image(2, &image, &[], &labels).is_err());
        output.finish().unwrap();

        let drawn = image::open(out.join("000000000042.png")).unwrap().to_rgb8();
        assert_eq!(drawn.dimensions(), (100, 80));
        assert_eq!(
            *drawn.get_pixel(10, 50),
            crate::draw::class_colour(17),
            "box drawn"
        );
        assert_eq!(
            image::open(out.join("cat.png")).unwrap().to_rgb8(),
            image,
            "nothing drawn"
        );
        let results: Vec<CocoResult> =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(results.len(), 1, "the 0.2 detection is below the threshold");
        assert_eq!((results[0].image_id, results[0].category_id), (42, 17));
        assert_eq!(results[0].bbox, [10.0, 30.0, 50.0, 40.0]);
    }
}
