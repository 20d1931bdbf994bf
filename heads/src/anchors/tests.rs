use super::*;

#[test]
fn base_anchors_are_rounded_like_torchvision() {
    let gen = AnchorGenerator::new(&AnchorGeneratorConfig::default());
    // size 32: ratio 0.5 -> w = 45.25, h = 22.63 -> half-extents 22.6, 11.3 -> 23, 11.
    assert_eq!(
        gen.cell_anchors()[0],
        vec![
            [-23., -11., 23., 11.],
            [-16., -16., 16., 16.],
            [-11., -23., 11., 23.]
        ]
    );
    assert_eq!(gen.num_anchors_per_location(), vec![3; 5]);
}

#[test]
fn stride_is_integer_division_of_padded_size() -> Result<()> {
    let config = AnchorGeneratorConfig {
        sizes: vec![vec![32.]],
        aspect_ratios: vec![vec![1.0]],
    };
    let gen = AnchorGenerator::new(&config);
    // 96 / 2 = 48 rows, 128 / 3 = 42 columns (not 42.67).
    let a = gen.forward((96, 128), &[(2, 3)], &Device::Cpu)?;
    let a = a[0].to_vec2::<f32>()?;
    assert_eq!(a.len(), 6);
    assert_eq!(a[1], vec![42. - 16., -16., 42. + 16., 16.]);
    assert_eq!(a[3], vec![-16., 48. - 16., 16., 48. + 16.]);
    Ok(())
}

#[test]
fn rejects_wrong_number_of_levels() {
    let gen = AnchorGenerator::new(&AnchorGeneratorConfig::default());
    assert!(gen.forward((64, 64), &[(16, 16)], &Device::Cpu).is_err());
}
