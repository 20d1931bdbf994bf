use super::*;

#[test]
fn parses_named_and_pattern_architectures() {
    let r = ResNextConfig::from_name("resnext101_32x8d").unwrap();
    assert_eq!(
        (r.layers, r.groups, r.width_per_group),
        ([3, 4, 23, 3], 32, 8)
    );
    assert_eq!(r.width(0), 256);
    let a = ResNextConfig::from_name("resnext50_1x64d").unwrap();
    assert_eq!(a, ResNextConfig::from_name("resnet50").unwrap());
    assert_eq!(
        ResNextConfig::from_name("resnext50_8x14d")
            .unwrap()
            .width(3),
        896
    );
}

#[test]
fn unknown_name_lists_valid_ones() {
    for bad in ["resnet34", "resnext50_32x4", "vgg16", "resnext50_0x4d", ""] {
        let msg = ResNextConfig::from_name(bad).unwrap_err().to_string();
        assert!(
            msg.contains("resnext101_64x4d") && msg.contains(bad),
            "{msg}"
        );
    }
}
