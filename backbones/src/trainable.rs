//! torchvision's freezing rule for `trainable_layers` (`resnet_fpn_backbone` /
//! `_resnet_fpn_extractor`): the last `trainable_layers` of `[layer4, layer3, layer2, layer1,
//! conv1]` train, the rest of the body is frozen; the FPN always trains.
use crate::error::BackboneError;

const LAYERS_FROM_TOP: [&str; 5] = ["layer4", "layer3", "layer2", "layer1", "conv1"];

/// Whether the parameter `param_name` trains when `trainable_layers` (0..=5) stages train.
///
/// `param_name` is a state-dict name relative to the ResNet body (`layer1.0.conv2.weight`);
/// a `backbone.body.` or `body.` prefix is accepted. Names under `fpn.` are always trainable.
/// FrozenBatchNorm2d tensors (`bn*`, `downsample.1.*`) are never trainable: torchvision holds
/// them as buffers, not parameters. Any other name outside the listed layers (`fc.*`) is frozen.
///
/// ```
/// assert!(backbones::is_trainable("layer4.0.conv1.weight", 3).unwrap());
/// assert!(!backbones::is_trainable("backbone.body.layer1.0.conv1.weight", 3).unwrap());
/// assert!(!backbones::is_trainable("layer4.0.bn1.weight", 5).unwrap());
/// ```
pub fn is_trainable(param_name: &str, trainable_layers: usize) -> Result<bool, BackboneError> {
    if trainable_layers > 5 {
        return Err(BackboneError::InvalidTrainableLayers(trainable_layers));
    }
    let name = param_name.strip_prefix("backbone.").unwrap_or(param_name);
    if name.starts_with("fpn.") {
        return Ok(true);
    }
    let name = name.strip_prefix("body.").unwrap_or(name);
    if is_frozen_batch_norm(name) {
        return Ok(false);
    }
    let trained = &LAYERS_FROM_TOP[..trainable_layers];
    Ok(trained
        .iter()
        .any(|layer| name.starts_with(&format!("{layer}."))))
}

/// `bn1.weight`, `layer1.0.bn3.bias`, `layer2.0.downsample.1.running_var`, ...
fn is_frozen_batch_norm(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    let bn_name = parts.iter().any(|p| {
        p.strip_prefix("bn")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    let downsample_bn = parts.windows(2).any(|w| w == ["downsample", "1"]);
    bn_name || downsample_bn
}

#[cfg(test)]
mod tests;
