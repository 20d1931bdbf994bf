use super::{hours_minutes_seconds, LogLine};

#[test]
fn eta_is_hours_minutes_seconds() {
    assert_eq!(hours_minutes_seconds(0.0), "0:00:00");
    assert_eq!(hours_minutes_seconds(59.6), "0:01:00");
    assert_eq!(hours_minutes_seconds(3725.0), "1:02:05");
    assert_eq!(hours_minutes_seconds(f64::NAN), "0:00:00");
}

#[test]
fn a_line_holds_every_field() {
    let losses = [("loss_classifier", 0.5), ("loss_box_reg", 0.25)];
    let line = LogLine {
        iteration: 20,
        max_iter: 120,
        losses: &losses,
        seconds_per_iteration: 1.5,
        data_seconds: 0.01,
        all_reduce_seconds: None,
        lr: 0.02,
    }
    .to_string();
    // 100 iterations left at 1.5 s each: 150 s.
    assert_eq!(
        line,
        "eta: 0:02:30  iter: 20/120  total_loss: 0.7500  loss_classifier: 0.5000  \
         loss_box_reg: 0.2500  time: 1.5000 s/iter  data_time: 0.0100  lr: 2.000e-2"
    );
}

#[test]
fn a_data_parallel_line_shows_the_all_reduce_time() {
    let losses = [("loss_classifier", 0.5)];
    let line = LogLine {
        iteration: 1,
        max_iter: 2,
        losses: &losses,
        seconds_per_iteration: 0.5,
        data_seconds: 0.01,
        all_reduce_seconds: Some(0.0123),
        lr: 0.02,
    }
    .to_string();
    assert!(
        line.ends_with("data_time: 0.0100  all_reduce: 0.0123  lr: 2.000e-2"),
        "{line}"
    );
}
