//! Weights in and out of the model: [`params`] (training: trainable `Var`s and frozen tensors
//! behind a `VarBuilder`, seeded initialisation), [`load`] (inference: a `detect train` model or
//! torchvision-layout weights, every key checked), [`pth`] (`torch.save` zip files, no code
//! executed) and [`discovery`] (the newest trained model when none is named).
pub mod discovery;
pub mod load;
pub mod params;
pub mod pth;
