//! Detection heads (anchors, RPN, RoI heads) and the detection ops they stand on (`ops`).

pub mod ops;

pub mod anchors;
pub mod box_coder;
pub mod losses;
pub mod matcher;
pub mod roi_heads;
pub mod rpn;
pub mod sampler;
