use super::*;

#[test]
fn finite_losses_pass() {
    assert_eq!(
        check_finite_losses(3, &[("loss_a", 0.5), ("loss_b", 0.0)]),
        Ok(())
    );
}

#[test]
fn names_iteration_and_every_component() {
    let losses = [
        ("loss_box_reg", f64::INFINITY),
        ("loss_classifier", f64::NAN),
        ("loss_objectness", 0.25),
    ];
    let err = check_finite_losses(1234, &losses).unwrap_err().to_string();
    assert!(err.contains("iteration 1234"), "{err}");
    assert!(err.contains("loss_box_reg = inf"), "{err}");
    assert!(err.contains("loss_classifier = NaN"), "{err}");
    assert!(err.contains("loss_objectness = 0.25"), "{err}");
}
