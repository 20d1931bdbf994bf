use super::*;
use candle_core::Device;

fn boxes(v: &[[f32; 4]]) -> Tensor {
    Tensor::from_iter(v.iter().flatten().copied(), &Device::Cpu)
        .unwrap()
        .reshape((v.len(), 4))
        .unwrap()
}

#[test]
fn encode_then_decode_is_identity() -> Result<()> {
    let coder = BoxCoder::new([10., 10., 5., 5.]);
    let reference = boxes(&[[0., 0., 10., 20.], [5., 5., 50., 30.]]);
    let gt = boxes(&[[1., 2., 12., 18.], [0., 10., 40., 40.]]);
    let codes = coder.encode(&gt, &reference)?;
    let back = coder.decode(&codes, &reference)?.squeeze(1)?;
    let diff = (back - &gt)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff < 1e-4, "round trip error {diff}");
    Ok(())
}

#[test]
fn encode_matches_hand_computed_deltas() -> Result<()> {
    let coder = BoxCoder::new([1., 1., 1., 1.]);
    let codes = coder.encode(&boxes(&[[2., 0., 12., 40.]]), &boxes(&[[0., 0., 10., 20.]]))?;
    let got = codes.to_vec2::<f32>()?[0].clone();
    let want = [0.2, 0.5, 0.0, 2f32.ln()];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
    Ok(())
}

#[test]
fn decode_clamps_size_deltas() -> Result<()> {
    let coder = BoxCoder::new([1., 1., 1., 1.]);
    let codes = Tensor::new(&[[0f32, 0., 100., 100.]], &Device::Cpu)?;
    let out = coder.decode(&codes, &boxes(&[[0., 0., 16., 16.]]))?;
    let b = out.flatten_all()?.to_vec1::<f32>()?;
    // exp(ln(1000/16)) * 16 = 1000 px wide, centred on 8.
    assert!((b[2] - b[0] - 1000.).abs() < 1e-2, "{b:?}");
    Ok(())
}

#[test]
fn decode_applies_every_class_column() -> Result<()> {
    let coder = BoxCoder::new([10., 10., 5., 5.]);
    let codes = Tensor::new(&[[0f32, 0., 0., 0., 10., 0., 0., 0.]], &Device::Cpu)?;
    let out = coder.decode(&codes, &boxes(&[[0., 0., 10., 10.]]))?;
    assert_eq!(out.dims(), &[1, 2, 4]);
    let v = out.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(&v[..4], &[0., 0., 10., 10.]);
    assert_eq!(&v[4..], &[10., 0., 20., 10.]);
    Ok(())
}
