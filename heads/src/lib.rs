//! Detection heads (anchors, RPN, RoI heads) and the detection ops they stand on (`ops`).

pub mod ops;
