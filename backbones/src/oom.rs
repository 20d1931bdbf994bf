//! CUDA out of memory: recognising it in an error and telling the user what to lower.
//!
//! candle reports a failed device allocation as cudarc's
//! `DriverError(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")`; cuDNN and cuBLAS report theirs
//! as `CUDNN_STATUS_ALLOC_FAILED` / `CUBLAS_STATUS_ALLOC_FAILED`. Those reach us as text inside
//! candle's error (wrapped, with context), so the check looks at the text of every error in
//! the chain. The binary turns such an error into [`OutOfMemory`], which names the batch size
//! and image size to lower.

/// The markers of an allocation failure in CUDA, cuDNN and cuBLAS error texts.
const MARKERS: [&str; 3] = [
    "CUDA_ERROR_OUT_OF_MEMORY",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED",
];

/// Whether `text` (an error's Display or Debug text) reports a GPU allocation failure.
pub fn mentions_out_of_memory(text: &str) -> bool {
    MARKERS.iter().any(|m| text.contains(m))
}

/// Whether `err` or any error in its `source()` chain reports a GPU allocation failure.
pub fn is_out_of_memory(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cur) = e {
        if mentions_out_of_memory(&cur.to_string()) || mentions_out_of_memory(&format!("{cur:?}")) {
            return true;
        }
        e = cur.source();
    }
    false
}

/// A GPU out-of-memory failure, with the settings that decide how much memory a step takes.
#[derive(Debug, thiserror::Error)]
#[error(
    "the GPU ran out of memory during {stage} with batch size {batch_size} and {}; lower \
     --batch-size (try {smaller}) or the image size (--min-size / --max-size), or use a GPU \
     with more free memory (CUDA said: {cause})",
    image_size(*min_size, *max_size),
    smaller = (batch_size / 2).max(1)
)]
pub struct OutOfMemory {
    /// What was running: `training`, `evaluation`, `prediction`.
    pub stage: String,
    pub batch_size: usize,
    /// `--min-size` / `--max-size` when given (None: the model's defaults).
    pub min_size: Option<usize>,
    pub max_size: Option<usize>,
    /// The first line of the original error.
    pub cause: String,
}

fn image_size(min_size: Option<usize>, max_size: Option<usize>) -> String {
    match (min_size, max_size) {
        (None, None) => "the model's default image size".into(),
        (min, max) => {
            let show =
                |v: Option<usize>| v.map_or("the model's default".into(), |v| format!("{v} px"));
            format!(
                "images resized to a shorter side of {} (longer side at most {})",
                show(min),
                show(max)
            )
        }
    }
}

impl OutOfMemory {
    /// `Some` when `err` is a GPU out-of-memory error, carrying the given settings.
    pub fn from_error(
        err: &(dyn std::error::Error + 'static),
        stage: &str,
        batch_size: usize,
        (min_size, max_size): (Option<usize>, Option<usize>),
    ) -> Option<Self> {
        if !is_out_of_memory(err) {
            return None;
        }
        let cause = err
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        Some(Self {
            stage: stage.to_string(),
            batch_size,
            min_size,
            max_size,
            cause,
        })
    }
}

#[cfg(test)]
mod tests;
