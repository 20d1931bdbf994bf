//! COCO-format datasets, the built-in synthetic `shapes` dataset, transforms, the loader and
//! COCO box evaluation.
