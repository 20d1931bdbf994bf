//! Gradients of the four training losses (summed) with respect to every RPN-head and
//! box-head weight, against torchvision's autograd on the same weights, features, proposals
//! and samples (fixture: see `tests/fixtures/faster_rcnn/gen.py`).
//!
//! Tolerance: max |ours - torch| <= 1e-4 * max |torch| per weight: the gradients are sums
//! of thousands of f32 products in a different order.

mod faster_rcnn_fixture;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use faster_rcnn_fixture::Fixture;
use heads::roi_heads::{RoiHeads, RoiHeadsConfig};
use heads::rpn::{Rpn, RpnConfig};

#[test]
fn loss_gradients_match_torchvision() -> Result<()> {
    let fx = Fixture::load();
    let varmap = VarMap::new();
    let weights: Vec<String> = fx
        .tensors
        .keys()
        .filter(|k| k.starts_with("rpn.") || k.starts_with("roi_heads."))
        .cloned()
        .collect();
    {
        let mut data = varmap.data().lock().unwrap();
        for name in &weights {
            data.insert(name.clone(), Var::from_tensor(&fx.get(name))?);
        }
    }
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let channels = fx.usize("channels");
    let rpn = Rpn::new(&RpnConfig::default(), channels, vb.pp("rpn"))?;
    let roi_config = RoiHeadsConfig {
        representation_size: fx.usize("representation_size"),
        ..RoiHeadsConfig::default()
    };
    let roi = RoiHeads::new(
        &roi_config,
        channels,
        fx.usize("num_classes"),
        vb.pp("roi_heads"),
    )?;

    let features = fx.features();
    let targets = fx.targets();
    let gt: Vec<Tensor> = targets.iter().map(|t| t.boxes.clone()).collect();
    let out = rpn.predict(&features, fx.padded_size())?;
    let anchor_targets = rpn.assign_targets_to_anchors(&out.anchors, &gt)?;
    let rpn_losses = rpn.compute_loss(&out, &anchor_targets, &gt, &fx.samples("rpn"))?;
    let proposals = roi.add_gt_proposals(&fx.per_image("train.proposals"), &targets)?;
    let matched = roi.assign_targets_to_proposals(&proposals, &targets)?;
    let samples =
        roi.select_training_samples(&proposals, &matched, &targets, &fx.samples("roi"))?;
    let roi_losses = roi.losses_on_samples(&features, &samples, &fx.image_sizes())?;
    let total = (((rpn_losses.objectness + rpn_losses.box_reg)? + roi_losses.classifier)?
        + roi_losses.box_reg)?;
    let grads = total.backward()?;

    let data = varmap.data().lock().unwrap();
    assert_eq!(weights.len(), 14, "RPN head (6) and box head (8) weights");
    for name in &weights {
        let var = &data[name];
        let got = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let want = fx.get(&format!("grad.{name}"));
        let scale = want.abs()?.max_all()?.to_scalar::<f32>()?;
        let diff = (got - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        println!("{name}: max |diff| {diff:.2e}, max |grad| {scale:.2e}");
        assert!(
            diff <= 1e-4 * scale,
            "{name}: gradient differs by {diff} (scale {scale})"
        );
    }
    Ok(())
}
