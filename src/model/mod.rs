//! The detector: [`config::DetectorConfig`] (the config tree, torchvision's defaults),
//! [`faster_rcnn::FasterRcnn`] (transform → backbone + FPN → RPN → RoI heads → postprocess) and
//! [`evaluate`] (the model over a dataset split, scored with COCO AP); [`precision`] (the math
//! of CUDA convolutions, `--precision`).
pub mod config;
pub mod evaluate;
pub mod faster_rcnn;
pub mod precision;
