//! What leaves the model: one [`detection::Detection`] type, COCO results files
//! ([`results`]), drawings ([`draw`]) and `detect predict`'s printing/drawing/collecting
//! ([`predict_output`]).
pub mod detection;
pub mod draw;
pub mod predict_output;
pub mod results;
