use super::*;

#[test]
fn json_has_the_issue_keys_and_paper_numbers() {
    let info = backbone_info("resnext101_32x4d", 800, 1333).unwrap();
    let json: serde_json::Value = serde_json::to_value(&info).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "backbone",
            "fpn_gflops",
            "gflops_224",
            "height",
            "params",
            "width"
        ]
    );
    assert_eq!(info.params, 44_177_704);
    assert!((info.gflops_224 - 7.97).abs() < 0.01);
    assert!(
        info.fpn_gflops > 100.0 && info.fpn_gflops < 300.0,
        "{}",
        info.fpn_gflops
    );
}

#[test]
fn unknown_backbone_lists_valid_names() {
    let msg = format!("{:#}", backbone_info("resnet18", 800, 1333).unwrap_err());
    assert!(
        msg.contains("resnet18") && msg.contains("resnext101_32x8d"),
        "{msg}"
    );
}
