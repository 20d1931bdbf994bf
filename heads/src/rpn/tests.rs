use super::*;
use candle_core::{DType, Device};
use candle_nn::VarMap;

fn features() -> Result<Vec<Tensor>> {
    [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
        .iter()
        .map(|&(h, w)| Tensor::randn(0f32, 1.0, (2, 4, h, w), &Device::Cpu))
        .collect()
}

#[test]
fn random_init_uses_torchvision_names() -> Result<()> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Rpn::new(&RpnConfig::default(), 4, vb.pp("rpn"))?;
    let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "rpn.head.bbox_pred.bias",
            "rpn.head.bbox_pred.weight",
            "rpn.head.cls_logits.bias",
            "rpn.head.cls_logits.weight",
            "rpn.head.conv.0.0.bias",
            "rpn.head.conv.0.0.weight",
        ]
    );
    Ok(())
}

#[test]
fn proposals_are_clipped_sorted_and_capped() -> Result<()> {
    let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
    let config = RpnConfig {
        post_nms_top_n_test: 50,
        ..RpnConfig::default()
    };
    let rpn = Rpn::new(&config, 4, vb)?;
    let sizes = [(64, 96), (50, 70)];
    let proposals = rpn.detect(&features()?, (64, 96), &sizes)?;
    for (i, (boxes, scores)) in proposals.boxes.iter().zip(&proposals.scores).enumerate() {
        let (h, w) = (sizes[i].0 as f32, sizes[i].1 as f32);
        assert!(boxes.dim(0)? > 0 && boxes.dim(0)? <= 50);
        for b in boxes.to_vec2::<f32>()? {
            assert!(
                b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w && b[3] <= h,
                "{b:?}"
            );
            assert!(b[2] - b[0] >= 1e-3 && b[3] - b[1] >= 1e-3, "{b:?}");
        }
        let s = scores.to_vec1::<f32>()?;
        assert!(s.windows(2).all(|p| p[0] >= p[1]));
    }
    Ok(())
}

#[test]
fn head_runs_the_convolution_it_is_given() -> Result<()> {
    let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
    let rpn = Rpn::new(&RpnConfig::default(), 4, vb)?;
    let feats = features()?;
    let (h, w) = (64, 96);
    let plain = rpn.predict(&feats, (h, w))?;
    // The same convolution through the injected path gives the same predictions ...
    let same = rpn.clone().with_conv(ConvFn::new(|x, k, b, p, relu| {
        let y = x
            .conv2d(k, p, 1, 1, 1)?
            .broadcast_add(&b.reshape((1, (), 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }));
    let again = same.predict(&feats, (h, w))?;
    let diff = (&plain.objectness - &again.objectness)?.abs()?.max_all()?;
    assert_eq!(diff.to_scalar::<f32>()?, 0.0);
    // ... and a convolution that outputs zeros gives zeros.
    let zeros = rpn.with_conv(ConvFn::new(|x, k, _, _, _| {
        let (n, _, h, w) = x.dims4()?;
        Tensor::zeros((n, k.dim(0)?, h, w), x.dtype(), x.device())
    }));
    let out = zeros.predict(&feats, (h, w))?;
    assert_eq!(out.objectness.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
    Ok(())
}
