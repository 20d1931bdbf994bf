use super::*;

fn check(name: &str, params: u64, gflops: f64) {
    let cfg = ResNextConfig::from_name(name).unwrap();
    let cost = classification_cost(&cfg, 224, 224);
    assert_eq!(cost.params, params, "{name} params");
    let g = cost.macs as f64 / 1e9;
    assert!(
        (g - gflops).abs() < 0.01 * gflops,
        "{name}: {g} GFLOPs vs {gflops}"
    );
}

/// Parameter counts are torchvision's (`sum(p.numel())`); FLOPs are the paper's Table 1
/// and 3 values (to its 1-decimal rounding) and torchvision's model-card values.
#[test]
fn reproduces_torchvision_and_paper_counts() {
    check("resnet50", 25_557_032, 4.09);
    check("resnext50_32x4d", 25_028_904, 4.23);
    check("resnet101", 44_549_160, 7.80);
    check("resnext101_32x4d", 44_177_704, 7.97);
    check("resnext101_32x8d", 88_791_336, 16.41);
    check("resnext101_64x4d", 83_455_272, 15.46);
    check("resnet152", 60_192_808, 11.51);
}

/// Paper Table 2: the family at roughly constant complexity (about 4.1-4.2 GFLOPs, 25M).
#[test]
fn table2_family_has_constant_complexity() {
    for name in [
        "resnext50_1x64d",
        "resnext50_2x40d",
        "resnext50_4x24d",
        "resnext50_8x14d",
        "resnext50_32x4d",
    ] {
        let cost = classification_cost(&ResNextConfig::from_name(name).unwrap(), 224, 224);
        let g = cost.macs as f64 / 1e9;
        assert!((4.05..=4.3).contains(&g), "{name}: {g} GFLOPs");
        assert!(
            (24.5e6..=25.7e6).contains(&(cost.params as f64)),
            "{name}: {} params",
            cost.params
        );
    }
}
