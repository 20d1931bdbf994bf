//! COCO-format datasets, the built-in synthetic `shapes` dataset, transforms, the loader and
//! COCO box evaluation.
pub mod coco;
pub mod eval;
pub mod image;
pub mod transforms;
pub mod rng;
pub mod shapes;
pub mod dataset;
pub mod loader;
pub mod sampler;
pub mod batch;
