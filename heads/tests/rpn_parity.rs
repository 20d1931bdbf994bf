//! Anchors, RPN proposals and RPN losses against torchvision's `AnchorGenerator` and
//! `RegionProposalNetwork` on the same weights and features (fixture: see
//! `tests/fixtures/faster_rcnn/gen.py`).
//!
//! Tolerances: anchors are integers plus integer shifts, so exact. Proposal boxes within
//! 1e-3 px: the head's convolutions differ from torch's in summation order (~1e-6 relative),
//! which `exp` in the decoder scales by box sizes of up to ~500 px; objectness probabilities
//! within 1e-5. Proposals with exactly tied scores may come in either order. Losses within 1e-4
//! relative: means and sums of a few hundred f32 terms.

mod faster_rcnn_fixture;

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use faster_rcnn_fixture::{match_ranked, max_box_diff, rel_err, scalar, Fixture, Ranked};
use heads::rpn::{Proposals, Rpn, RpnConfig};
use heads::sampler::{BalancedPositiveNegativeSampler, FOREGROUND};

fn rpn(fx: &Fixture) -> Rpn {
    Rpn::new(
        &RpnConfig::default(),
        fx.usize("channels"),
        fx.var_builder().pp("rpn"),
    )
    .unwrap()
}

#[test]
fn anchors_equal_torchvision_exactly() -> Result<()> {
    let fx = Fixture::load();
    let out = rpn(&fx).predict(&fx.features(), fx.padded_size())?;
    let want = fx.get("anchors");
    assert_eq!(out.anchors.dims(), want.dims());
    let diff = max_box_diff(&out.anchors, &want);
    assert_eq!(diff, 0.0, "anchors differ by up to {diff}");
    // 24x32, 12x16, 6x8, 3x4 and 2x2 (P6: stride 96 // 2 = 48 by 128 // 2 = 64) cells x 3.
    assert_eq!(out.num_anchors_per_level, vec![2304, 576, 144, 36, 12]);
    Ok(())
}

fn check_proposals(fx: &Fixture, got: &Proposals, mode: &str) {
    let want = fx.per_image(&format!("{mode}.proposals"));
    let want_scores = fx.per_image(&format!("{mode}.proposal_scores"));
    assert_eq!(got.boxes.len(), want.len());
    for i in 0..want.len() {
        let what = format!("{mode} proposals of image {i}");
        let (b, s) = match_ranked(
            &what,
            &Ranked::new(&got.boxes[i], &got.scores[i], None),
            &Ranked::new(&want[i], &want_scores[i], None),
            1e-3,
            1e-5,
        );
        println!(
            "{what}: {} proposals, max |box diff| {b:.2e} px, max |score diff| {s:.2e}",
            want[i].dim(0).unwrap()
        );
    }
}

#[test]
fn eval_proposals_match_torchvision() -> Result<()> {
    let fx = Fixture::load();
    let proposals = rpn(&fx).detect(&fx.features(), fx.padded_size(), &fx.image_sizes())?;
    check_proposals(&fx, &proposals, "eval");
    for s in &proposals.scores {
        let v = s.to_vec1::<f32>()?;
        assert!(
            v.windows(2).all(|w| w[0] >= w[1]),
            "scores are sorted decreasing"
        );
    }
    Ok(())
}

#[test]
fn training_proposals_match_torchvision() -> Result<()> {
    let fx = Fixture::load();
    let rpn = rpn(&fx);
    let out = rpn.predict(&fx.features(), fx.padded_size())?;
    let proposals = rpn.training_proposals(&out, &fx.image_sizes())?;
    check_proposals(&fx, &proposals, "train");
    Ok(())
}

#[test]
fn losses_on_torchvision_samples_match() -> Result<()> {
    let fx = Fixture::load();
    let rpn = rpn(&fx);
    let out = rpn.predict(&fx.features(), fx.padded_size())?;
    let gt: Vec<Tensor> = fx.targets().into_iter().map(|t| t.boxes).collect();
    let targets = rpn.assign_targets_to_anchors(&out.anchors, &gt)?;
    // compute_loss also checks every sampled positive is foreground and every negative
    // background under our matching, so this compares the matcher too.
    let losses = rpn.compute_loss(&out, &targets, &gt, &fx.samples("rpn"))?;
    let objectness = scalar(&losses.objectness);
    let box_reg = scalar(&losses.box_reg);
    let (want_obj, want_box) = (fx.loss("loss_objectness"), fx.loss("loss_rpn_box_reg"));
    println!(
        "objectness {objectness} vs {want_obj} (rel {:.1e})",
        rel_err(objectness, want_obj)
    );
    println!(
        "box_reg {box_reg} vs {want_box} (rel {:.1e})",
        rel_err(box_reg, want_box)
    );
    assert!(rel_err(objectness, want_obj) < 1e-4);
    assert!(rel_err(box_reg, want_box) < 1e-4);
    Ok(())
}

#[test]
fn matcher_labels_the_anchors_torchvision_sampled_as_positive() -> Result<()> {
    let fx = Fixture::load();
    let rpn = rpn(&fx);
    let out = rpn.predict(&fx.features(), fx.padded_size())?;
    let gt: Vec<Tensor> = fx.targets().into_iter().map(|t| t.boxes).collect();
    let targets = rpn.assign_targets_to_anchors(&out.anchors, &gt)?;
    for (i, (t, s)) in targets.iter().zip(fx.samples("rpn")).enumerate() {
        let labels = t.labels.to_vec1::<i64>()?;
        let foreground = labels.iter().filter(|&&l| l == FOREGROUND).count();
        // torchvision samples all positives when there are fewer than 128.
        if foreground <= 128 {
            assert_eq!(
                foreground,
                s.positive.len(),
                "image {i}: foreground anchors"
            );
        }
    }
    // The image without ground truth: every anchor is background.
    assert!(targets[2].labels.to_vec1::<i64>()?.iter().all(|&l| l == 0));
    Ok(())
}

#[test]
fn old_rpn_conv_weight_names_load() -> Result<()> {
    let fx = Fixture::load();
    let mut renamed = fx.tensors.clone();
    for p in ["weight", "bias"] {
        let t = renamed.remove(&format!("rpn.head.conv.0.0.{p}")).unwrap();
        renamed.insert(format!("rpn.head.conv.{p}"), t);
    }
    let vb = VarBuilder::from_tensors(renamed, DType::F32, &candle_core::Device::Cpu);
    let old = Rpn::new(&RpnConfig::default(), fx.usize("channels"), vb.pp("rpn"))?;
    let a = old.predict(&fx.features(), fx.padded_size())?.objectness;
    let b = rpn(&fx)
        .predict(&fx.features(), fx.padded_size())?
        .objectness;
    let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    Ok(())
}

#[test]
fn seeded_losses_run_with_an_image_without_ground_truth() -> Result<()> {
    let fx = Fixture::load();
    let rpn = rpn(&fx);
    let gt: Vec<Tensor> = fx.targets().into_iter().map(|t| t.boxes).collect();
    let mut sampler = BalancedPositiveNegativeSampler::new(256, 0.5, 42);
    let (proposals, losses) = rpn.losses(
        &fx.features(),
        fx.padded_size(),
        &fx.image_sizes(),
        &gt,
        &mut sampler,
    )?;
    assert_eq!(proposals.boxes.len(), 3);
    let (o, b) = (scalar(&losses.objectness), scalar(&losses.box_reg));
    assert!(
        o.is_finite() && o > 0.0 && b.is_finite() && b > 0.0,
        "{o} {b}"
    );
    // Only the empty image: objectness loss over negatives only, no box loss.
    let mut sampler = BalancedPositiveNegativeSampler::new(256, 0.5, 42);
    let f: Vec<Tensor> = fx
        .features()
        .iter()
        .map(|f| f.narrow(0, 2, 1))
        .collect::<Result<_>>()?;
    let (_, losses) = rpn.losses(
        &f,
        fx.padded_size(),
        &fx.image_sizes()[2..],
        &gt[2..],
        &mut sampler,
    )?;
    assert!(scalar(&losses.objectness).is_finite());
    assert_eq!(scalar(&losses.box_reg), 0.0);
    Ok(())
}
