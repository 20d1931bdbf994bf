//! The box head on pooled RoI features (torchvision's `TwoMLPHead`) and the class / box
//! predictor on top of it (`FastRCNNPredictor`).

use backbones::autocast;
use candle_core::{Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};

/// `nn.Linear` with torchvision's default init: weight and bias U(-1/sqrt(in), 1/sqrt(in)).
fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(Linear::new(weight, Some(bias)))
}

/// Two fully connected layers with ReLU (`fc6`, `fc7`).
#[derive(Debug, Clone)]
pub struct TwoMlpHead {
    fc6: Linear,
    fc7: Linear,
}

impl TwoMlpHead {
    /// `in_channels` = C * 7 * 7 of the pooled features; `vb` points at `roi_heads.box_head`.
    pub fn new(in_channels: usize, representation_size: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc6: linear(in_channels, representation_size, vb.pp("fc6"))?,
            fc7: linear(representation_size, representation_size, vb.pp("fc7"))?,
        })
    }

    /// # Shapes
    /// - `x`: `[K, C, oh, ow]`; returns `[K, representation_size]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.flatten_from(1)?; // [K, C*oh*ow]
        let x = forward(&self.fc6, &x)?.relu()?;
        forward(&self.fc7, &x)?.relu()
    }
}

/// Class logits and per-class box deltas (`cls_score`, `bbox_pred`).
#[derive(Debug, Clone)]
pub struct FastRcnnPredictor {
    cls_score: Linear,
    bbox_pred: Linear,
    num_classes: usize,
}

impl FastRcnnPredictor {
    /// `num_classes` includes the background class 0; `vb` points at
    /// `roi_heads.box_predictor`.
    pub fn new(in_channels: usize, num_classes: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            cls_score: linear(in_channels, num_classes, vb.pp("cls_score"))?,
            bbox_pred: linear(in_channels, num_classes * 4, vb.pp("bbox_pred"))?,
            num_classes,
        })
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// # Shapes
    /// - `x`: `[K, R]` (or `[K, R, 1, 1]`); returns `(logits [K, num_classes],
    ///   deltas [K, 4 * num_classes])`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let x = x.flatten_from(1)?;
        // In f32 for the losses and the decoding, whatever the autocast precision.
        Ok((
            crate::widened(&forward(&self.cls_score, &x)?)?,
            crate::widened(&forward(&self.bbox_pred, &x)?)?,
        ))
    }
}

/// `linear.forward(x)` under the thread's autocast ([`autocast::linear`]).
fn forward(linear: &Linear, x: &Tensor) -> Result<Tensor> {
    autocast::linear(x, linear.weight(), linear.bias())
}
