use super::*;

#[test]
fn old_fpn_keys_get_the_new_spelling() {
    assert_eq!(
        new_fpn_spelling("backbone.fpn.inner_blocks.2.weight"),
        "backbone.fpn.inner_blocks.2.0.weight"
    );
    assert_eq!(
        new_fpn_spelling("fpn.layer_blocks.0.bias"),
        "fpn.layer_blocks.0.0.bias"
    );
    for same in [
        "backbone.fpn.inner_blocks.2.0.weight",
        "backbone.body.layer1.0.conv1.weight",
    ] {
        assert_eq!(new_fpn_spelling(same), same);
    }
}
