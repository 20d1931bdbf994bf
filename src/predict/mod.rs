//! `detect predict` below the command: [`inputs`] turns the paths given (files and folders)
//! into the list of image files, in order; [`pipeline`] runs the detector over them, a decoding
//! thread preparing the next images while the model runs on the current one, and measures the
//! throughput. What is printed, drawn and written is [`crate::output::predict_output`]'s.
pub mod inputs;
pub mod pipeline;
