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

#[test]
fn anchors_are_uploaded_once_per_geometry() -> Result<()> {
    use crate::ops::transfer::Recorder;
    let gen = AnchorGenerator::new(&AnchorGeneratorConfig::default());
    let sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)];
    let scope = Recorder::start();
    let first = gen.forward((32, 32), &sizes, &Device::Cpu)?;
    let uploads = scope.finish().uploads;
    assert_eq!(uploads, 5, "one upload per level");
    let scope = Recorder::start();
    let again = gen.clone().forward((32, 32), &sizes, &Device::Cpu)?;
    assert_eq!(scope.finish().uploads, 0, "cached (clones share the cache)");
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
    }
    let scope = Recorder::start();
    gen.forward((64, 32), &sizes, &Device::Cpu)?;
    assert_eq!(
        scope.finish().uploads,
        5,
        "another padded size is another entry"
    );
    Ok(())
}
