//! Weights in and out of the model: [`params`] (training: trainable `Var`s and frozen tensors
//! behind a `VarBuilder`, seeded initialisation), [`load`] (inference: a `detect train` model or
//! torchvision-layout weights, every key checked), [`pth`] (`torch.save` zip files, no code
//! executed), [`discovery`] (the newest trained model when none is named), and pretrained
//! weights by name: [`registry`] (name → URL, hash, architecture, classes), [`download`] (the
//! verified cache), [`resolve`] (a `--weights` value → a file) and [`categories`] (what the
//! labels of torchvision-layout weights mean).
pub mod categories;
pub mod discovery;
pub mod download;
pub mod load;
pub mod params;
pub mod pth;
pub mod random;
pub mod registry;
pub mod resolve;
