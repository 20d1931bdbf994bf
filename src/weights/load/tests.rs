use super::*;
use candle_core::Tensor;
use std::collections::HashMap;

fn map_with(name: &str, shape: &[usize]) -> WeightMap {
    let t = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    WeightMap::new(HashMap::from([(name.to_string(), t)]))
}

#[test]
fn num_classes_comes_from_the_predictor() {
    let path = Path::new("w.safetensors");
    assert_eq!(
        num_classes_of(&map_with(CLS_SCORE_WEIGHT, &[91, 1024]), path).unwrap(),
        91
    );
    let message = num_classes_of(
        &map_with("backbone.body.conv1.weight", &[64, 3, 7, 7]),
        path,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains(CLS_SCORE_WEIGHT) && message.contains("hint:"),
        "{message}"
    );
    assert!(num_classes_of(&map_with(CLS_SCORE_WEIGHT, &[91]), path).is_err());
}

#[test]
fn torchvision_weights_without_backbone_ask_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let t = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&HashMap::from([(CLS_SCORE_WEIGHT, t)]), &path).unwrap();
    let message = load_detector(&ResolvedWeights::file(path), None, None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("--backbone NAME") && message.contains("hint:"),
        "{message}"
    );
}
