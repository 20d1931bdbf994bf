use super::*;
use candle_core::Device;

#[test]
fn box_loss_uses_only_the_true_class_deltas_of_foreground() -> Result<()> {
    let dev = Device::Cpu;
    let logits = Tensor::zeros((2, 3), DType::F32, &dev)?;
    // Row 0 is class 2: only its columns 8..12 count; row 1 is background: ignored.
    let mut d = vec![0f32; 24];
    d[0..4].copy_from_slice(&[9., 9., 9., 9.]); // row 0, class 0
    d[8..12].copy_from_slice(&[1., 0., 0., 0.]); // row 0, class 2
    d[16..20].copy_from_slice(&[9., 9., 9., 9.]); // row 1, class 1
    let deltas = Tensor::from_vec(d, (2, 12), &dev)?;
    let labels = Tensor::new(&[2u32, 0], &dev)?;
    let targets = Tensor::zeros((2, 4), DType::F32, &dev)?;
    let losses = fastrcnn_loss(&logits, &deltas, &labels, &targets)?;
    // smooth-L1 of 1.0 at beta 1/9 = 1 - 1/18, divided by the 2 sampled rows.
    let want = (1.0 - 1.0 / 18.0) / 2.0;
    let got = f64::from(losses.box_reg.to_scalar::<f32>()?);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let ce = f64::from(losses.classifier.to_scalar::<f32>()?);
    assert!(
        (ce - 3f64.ln()).abs() < 1e-6,
        "uniform logits: ln 3, got {ce}"
    );
    Ok(())
}

#[test]
fn rejects_labels_outside_the_classes() -> Result<()> {
    let dev = Device::Cpu;
    let logits = Tensor::zeros((1, 3), DType::F32, &dev)?;
    let deltas = Tensor::zeros((1, 12), DType::F32, &dev)?;
    let targets = Tensor::zeros((1, 4), DType::F32, &dev)?;
    let labels = Tensor::new(&[3u32], &dev)?;
    assert!(fastrcnn_loss(&logits, &deltas, &labels, &targets).is_err());
    Ok(())
}
