//! The one detection type of the output side: a box in the original image's pixels, a score and
//! the model's label, as `detect predict` prints, draws and writes it.
use candle_core::{DType, Tensor};
#[cfg(doc)]
use datasets::coco::CategoryMap;
use heads::ops::transfer;

/// One detection, in the original image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`, continuous coordinates (no `+1`), original image pixels.
    pub box_xyxy: [f32; 4],
    /// Class probability in [0, 1].
    pub score: f32,
    /// The model's label (1.. ; 0 is background), mapped to a category by a [`CategoryMap`].
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
        let read = "detections: output";
        let boxes = transfer::read_rows::<f32>(read, &boxes.to_dtype(DType::F32)?)?; // [D, 4]
        let scores = transfer::read::<f32>(read, &scores.to_dtype(DType::F32)?)?; // [D]
        let labels = transfer::read::<i64>(read, &labels.to_dtype(DType::I64)?)?; // [D]
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
