use super::*;

#[test]
fn follows_torchvision_layer_order() {
    let names = [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer2.1.conv2.weight",
        "layer3.0.downsample.0.weight",
        "layer4.2.conv3.weight",
    ];
    // trainable_layers = k trains the last k names of the list above, in reverse order.
    for k in 0..=5 {
        for (i, name) in names.iter().enumerate() {
            assert_eq!(is_trainable(name, k).unwrap(), i >= 5 - k, "{name} k={k}");
        }
    }
}

#[test]
fn batch_norm_never_fpn_always_and_range_checked() {
    assert!(!is_trainable("bn1.weight", 5).unwrap());
    assert!(!is_trainable("layer4.0.downsample.1.weight", 5).unwrap());
    assert!(is_trainable("backbone.fpn.inner_blocks.0.0.weight", 0).unwrap());
    assert!(!is_trainable("fc.weight", 5).unwrap());
    assert!(!is_trainable("layer10.0.conv1.weight", 5).unwrap());
    assert!(is_trainable("conv1.weight", 6).is_err());
}
