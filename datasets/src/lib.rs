//! Everything before the model and after it, without tensors except at the batch edge.
//!
//! - [`coco`]: the one COCO instances parser (typed records, errors with file/line/record),
//!   [`coco::CategoryMap`] (model labels ↔ category ids: contiguous 1..K or torchvision's identity-91 table) and training targets.
//! - [`dataset`]: a dataset by name (`coco` under `$DETECT_DATASETS`, `shapes`) or by files, as
//!   COCO records plus a way to read each image; [`shapes`] renders the synthetic dataset.
//! - [`image`] decodes to RGB → [`transforms`] (torchvision's GeneralizedRCNNTransform) →
//!   [`loader`] (worker threads, [`sampler`]'s deterministic, aspect-ratio-grouped batches,
//!   `loader::Batch`: `[B, 3, H, W]` images + targets); [`rng`] is the seeded generator behind it.
//! - [`eval`]: COCO box AP exactly as pycocotools computes it, from plain detections.
pub mod coco;
pub mod dataset;
pub mod eval;
pub mod image;
pub mod loader;
pub mod rng;
pub mod sampler;
pub mod shapes;
pub mod transforms;
