//! The one error type of this crate. Every message carries the values needed to act on it.
use candle_core::Shape;

/// What can go wrong building a backbone or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("unknown backbone `{name}`; valid: {valid}")]
    UnknownArchitecture { name: String, valid: String },

    #[error("trainable_layers must be in 0..=5, got {0}")]
    InvalidTrainableLayers(usize),

    #[error("invalid backbone configuration: {0}")]
    InvalidConfig(String),

    #[error("weights: missing tensor `{key}` (expected shape {expected:?})")]
    MissingTensor { key: String, expected: Shape },

    #[error("weights: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        key: String,
        expected: Shape,
        found: Shape,
    },

    #[error("weights: cannot read `{path}`: {reason}")]
    Read { path: String, reason: String },

    #[error(
        "weights: `{path}` has no tensors (a checkpoint nested under a key? try one of: {hint})"
    )]
    Empty { path: String, hint: String },
}

impl BackboneError {
    /// Wraps into a `candle_core::Error` so it can cross `candle_core::Result` APIs
    /// (`VarBuilder` backends) with its message intact.
    pub fn into_candle(self) -> candle_core::Error {
        candle_core::Error::wrap(self)
    }
}
