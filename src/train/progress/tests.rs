use super::*;

#[test]
fn losses_message_keeps_the_model_order() {
    let losses = [("loss_objectness", 0.6875), ("loss_box_reg", 0.25)];
    assert_eq!(
        format_losses(&losses, 0.02),
        "loss 0.938 (objectness 0.688, box_reg 0.250) lr 2.00e-2"
    );
}

#[test]
fn hidden_bar_tracks_position() {
    let p = TrainProgress::hidden(100, 1000);
    assert_eq!(p.bar.position(), 100);
    p.update(150, &[("loss_a", 1.0)], 0.01);
    assert_eq!(p.bar.position(), 150);
    assert_eq!(p.bar.length(), Some(1000));
    p.finish();
}

#[test]
fn ctrl_c_sets_the_stop_flag() -> anyhow::Result<()> {
    let stop = Interrupt::install()?;
    assert!(!stop.requested());
    // Send SIGINT to ourselves; without the handler this would end the test process.
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()?;
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stop.requested() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(stop.requested(), "SIGINT did not set the flag");
    let manual = Interrupt::manual();
    manual.clone().request();
    assert!(manual.requested());
    Ok(())
}
