use super::*;
use candle_core::{DType, Device};
use candle_nn::VarMap;

fn small_heads(varmap: &VarMap) -> Result<RoiHeads> {
    small_heads_with(varmap, 0.05)
}

fn small_heads_with(varmap: &VarMap, score_thresh: f32) -> Result<RoiHeads> {
    let config = RoiHeadsConfig {
        representation_size: 32,
        score_thresh,
        ..RoiHeadsConfig::default()
    };
    let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
    RoiHeads::new(&config, 4, 3, vb.pp("roi_heads"))
}

fn features() -> Result<Vec<Tensor>> {
    [16, 8, 4, 2, 1]
        .iter()
        .map(|&s| Tensor::randn(0f32, 1.0, (2, 4, s, s), &Device::Cpu))
        .collect()
}

#[test]
fn random_init_uses_torchvision_names() -> Result<()> {
    let varmap = VarMap::new();
    small_heads(&varmap)?;
    let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "roi_heads.box_head.fc6.bias",
            "roi_heads.box_head.fc6.weight",
            "roi_heads.box_head.fc7.bias",
            "roi_heads.box_head.fc7.weight",
            "roi_heads.box_predictor.bbox_pred.bias",
            "roi_heads.box_predictor.bbox_pred.weight",
            "roi_heads.box_predictor.cls_score.bias",
            "roi_heads.box_predictor.cls_score.weight",
        ]
    );
    Ok(())
}

#[test]
fn image_without_proposals_gets_no_detections() -> Result<()> {
    let heads = small_heads(&VarMap::new())?;
    let proposals = [
        Tensor::new(&[[4f32, 4., 40., 30.], [10., 12., 50., 60.]], &Device::Cpu)?,
        Tensor::zeros((0, 4), DType::F32, &Device::Cpu)?,
    ];
    let sizes = [(64, 64), (64, 64)];
    let detections = heads.detect(&features()?, &proposals, &sizes)?;
    assert_eq!(detections.len(), 2);
    assert_eq!(detections[1].boxes.dims(), &[0, 4]);
    assert_eq!(detections[1].scores.dims(), &[0]);
    // Nothing above the threshold: no detections either.
    let strict = small_heads_with(&VarMap::new(), 1.0)?;
    let detections = strict.detect(&features()?, &proposals, &sizes)?;
    assert_eq!(detections[0].boxes.dims(), &[0, 4]);
    assert_eq!(detections[0].labels.dims(), &[0]);
    Ok(())
}

#[test]
fn needs_a_foreground_class() {
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    assert!(RoiHeads::new(&RoiHeadsConfig::default(), 4, 1, vb).is_err());
}
