//! RoI heads (detections and losses) against torchvision's `RoIHeads` with the same weights,
//! features and proposals (fixture: see `tests/fixtures/faster_rcnn/gen.py`).
//!
//! Tolerances: detection boxes within 1e-2 px and scores within 1e-4 — RoIAlign and two
//! fully connected layers in a different summation order move logits by ~1e-6, and the
//! decoder's weights (10, 10, 5, 5) plus `exp` scale that by box size. Losses within 1e-4
//! relative (means over ~1500 sampled proposals).

mod faster_rcnn_fixture;

use candle_core::Result;
use faster_rcnn_fixture::{match_ranked, rel_err, scalar, Fixture, Ranked};
use heads::roi_heads::{Detections, RoiHeads, RoiHeadsConfig};
use heads::rpn::{Rpn, RpnConfig};

fn roi_heads(fx: &Fixture) -> RoiHeads {
    let config = RoiHeadsConfig {
        representation_size: fx.usize("representation_size"),
        ..RoiHeadsConfig::default()
    };
    let vb = fx.var_builder().pp("roi_heads");
    RoiHeads::new(&config, fx.usize("channels"), fx.usize("num_classes"), vb).unwrap()
}

fn check_detections(fx: &Fixture, got: &[Detections], what: &str) {
    assert_eq!(got.len(), fx.num_images());
    for (i, d) in got.iter().enumerate() {
        let prefix = format!("eval.detections.{i}");
        let want = Ranked::new(
            &fx.get(&format!("{prefix}.boxes")),
            &fx.get(&format!("{prefix}.scores")),
            Some(&fx.get(&format!("{prefix}.labels"))),
        );
        let ours = Ranked::new(&d.boxes, &d.scores, Some(&d.labels));
        let what = format!("{what} detections of image {i}");
        let (b, s) = match_ranked(&what, &ours, &want, 1e-2, 1e-4);
        println!(
            "{what}: {} detections, max |box diff| {b:.2e} px, max |score diff| {s:.2e}",
            want.scores.len()
        );
    }
}

#[test]
fn detections_on_torchvision_proposals_match() -> Result<()> {
    let fx = Fixture::load();
    let proposals = fx.per_image("eval.proposals");
    let detections = roi_heads(&fx).detect(&fx.features(), &proposals, &fx.image_sizes())?;
    check_detections(&fx, &detections, "torch proposals");
    let counts: Vec<usize> = detections.iter().map(|d| d.boxes.dim(0).unwrap()).collect();
    // The fixture covers both the top-100 cut and the score threshold.
    assert!(
        counts.contains(&100) && counts.iter().any(|&c| c < 100),
        "{counts:?}"
    );
    Ok(())
}

#[test]
fn detections_on_our_proposals_match() -> Result<()> {
    let fx = Fixture::load();
    let rpn = Rpn::new(
        &RpnConfig::default(),
        fx.usize("channels"),
        fx.var_builder().pp("rpn"),
    )?;
    let proposals = rpn.detect(&fx.features(), fx.padded_size(), &fx.image_sizes())?;
    let detections = roi_heads(&fx).detect(&fx.features(), &proposals.boxes, &fx.image_sizes())?;
    check_detections(&fx, &detections, "our proposals");
    Ok(())
}

#[test]
fn losses_on_torchvision_samples_match() -> Result<()> {
    let fx = Fixture::load();
    let heads = roi_heads(&fx);
    let targets = fx.targets();
    let proposals = heads.add_gt_proposals(&fx.per_image("train.proposals"), &targets)?;
    let matched = heads.assign_targets_to_proposals(&proposals, &targets)?;
    // select_training_samples checks the sampled positives / negatives against our labels.
    let samples =
        heads.select_training_samples(&proposals, &matched, &targets, &fx.samples("roi"))?;
    let losses = heads.losses_on_samples(&fx.features(), &samples, &fx.image_sizes())?;
    let classifier = scalar(&losses.classifier);
    let box_reg = scalar(&losses.box_reg);
    let (want_cls, want_box) = (fx.loss("loss_classifier"), fx.loss("loss_box_reg"));
    println!(
        "classifier {classifier} vs {want_cls} (rel {:.1e})",
        rel_err(classifier, want_cls)
    );
    println!(
        "box_reg {box_reg} vs {want_box} (rel {:.1e})",
        rel_err(box_reg, want_box)
    );
    assert!(rel_err(classifier, want_cls) < 1e-4);
    assert!(rel_err(box_reg, want_box) < 1e-4);
    Ok(())
}

#[test]
fn image_without_ground_truth_is_all_background() -> Result<()> {
    let fx = Fixture::load();
    let heads = roi_heads(&fx);
    let targets = fx.targets();
    let proposals = heads.add_gt_proposals(&fx.per_image("train.proposals"), &targets)?;
    let matched = heads.assign_targets_to_proposals(&proposals, &targets)?;
    assert_eq!(
        proposals[2].dim(0)?,
        971,
        "nothing appended to the empty image"
    );
    assert!(matched[2].labels.to_vec1::<i64>()?.iter().all(|&l| l == 0));
    // Seeded path end to end, with the empty image in the batch.
    let mut sampler = heads.sampler(3);
    let losses = heads.losses(
        &fx.features(),
        &fx.per_image("train.proposals"),
        &fx.image_sizes(),
        &targets,
        &mut sampler,
    )?;
    let (c, b) = (scalar(&losses.classifier), scalar(&losses.box_reg));
    assert!(
        c.is_finite() && c > 0.0 && b.is_finite() && b > 0.0,
        "{c} {b}"
    );
    Ok(())
}
