use super::*;

#[test]
fn built_in_registry_parses_and_every_entry_is_hashed() {
    let registry = Registry::parse(BUILT_IN, "built-in").unwrap();
    let detector = registry
        .entry("torchvision:fasterrcnn_resnet50_fpn")
        .unwrap();
    assert_eq!(detector.kind, WeightsKind::Detector);
    assert_eq!(detector.frozen_bn_eps, 0.0);
    assert_eq!(
        detector.url,
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
    );
    // torchvision's file names carry the first 8 hex digits of the SHA-256.
    assert_eq!(detector.sha256_prefix.as_deref(), Some("258fb6c6"));
    let categories = detector.categories.as_ref().unwrap();
    assert_eq!(categories.num_categories(), 80);
    assert_eq!(categories.name(13), Some("stop sign"), "label = COCO id");
    for (name, entry) in &registry.weights {
        let prefix = entry.sha256_prefix.as_deref().unwrap();
        assert!(
            entry.file_name().unwrap().contains(&format!("-{prefix}.")),
            "{name}: the prefix is the one in the published file name"
        );
    }
}

#[test]
fn imagenet_weights_exist_for_the_named_backbones_but_not_for_8x14d() {
    let registry = Registry::parse(BUILT_IN, "built-in").unwrap();
    for backbone in [
        "resnet50",
        "resnet101",
        "resnext50_32x4d",
        "resnext101_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
    ] {
        let name = registry.imagenet_name(backbone).unwrap();
        assert_eq!(registry.entry(name).unwrap().architecture, backbone);
    }
    let err = registry.imagenet_name("resnext50_8x14d").unwrap_err();
    assert!(err.to_string().contains("--backbone-weights none"), "{err}");
}

#[test]
fn v2_is_refused_naming_the_missing_layers() {
    let registry = Registry::parse(BUILT_IN, "built-in").unwrap();
    let name = "torchvision:fasterrcnn_resnet50_fpn_v2";
    let err = registry
        .entry(name)
        .unwrap()
        .check_supported(name)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("rpn.head.conv.1"), "{text}");
    assert!(text.contains("roi_heads.box_head.0"), "{text}");
    assert!(text.contains("fpn.inner_blocks.N.1"), "{text}");
}

#[test]
fn registry_prefixes_are_names_and_paths_are_files() {
    assert_eq!(
        WeightsRef::parse("torchvision:resnet50"),
        WeightsRef::Name("torchvision:resnet50".into())
    );
    for path in [
        "model.pth",
        "runs/a/model_final.safetensors",
        "C:\\w.pth",
        "./x:y",
        "a:",
    ] {
        assert_eq!(
            WeightsRef::parse(path),
            WeightsRef::File(path.into()),
            "{path}"
        );
    }
}

#[test]
fn unknown_name_is_an_error_listing_the_known_ones() {
    let registry = Registry::parse(BUILT_IN, "built-in").unwrap();
    let err = registry.entry("torchvision:nope").unwrap_err().to_string();
    assert!(
        err.contains("torchvision:resnet50") && err.contains("not read as a file"),
        "{err}"
    );
}

#[test]
fn an_entry_without_a_hash_or_with_a_short_one_is_refused() {
    let entry = |hash: &str| {
        format!(
            r#"{{"weights": {{"t:x": {{"url": "http://h/x.pth", {hash} "kind": "backbone",
            "architecture": "resnet50", "frozen_bn_eps": 1e-5, "source": "test"}}}}}}"#
        )
    };
    let err = Registry::parse(&entry(""), "test").unwrap_err();
    assert!(
        format!("{err:#}").contains("every entry needs one"),
        "{err:#}"
    );
    let err = Registry::parse(&entry(r#""sha256_prefix": "abc","#), "test").unwrap_err();
    assert!(format!("{err:#}").contains("8 to 64 hex digits"), "{err:#}");
    let err = Registry::parse(&entry(r#""sha256": "abcd","#), "test").unwrap_err();
    assert!(format!("{err:#}").contains("64 hex digits"), "{err:#}");
    assert!(Registry::parse(&entry(r#""sha256_prefix": "0123abcd","#), "test").is_ok());
}
