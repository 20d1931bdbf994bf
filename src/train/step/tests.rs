use super::*;

#[test]
fn sampler_seed_depends_on_run_seed_and_iteration_only() {
    assert_eq!(iteration_seed(1, 5), iteration_seed(1, 5));
    assert_ne!(iteration_seed(1, 5), iteration_seed(1, 6));
    assert_ne!(iteration_seed(1, 5), iteration_seed(2, 5));
}

/// Losses whose four values are `value` and whose sample counts are `(rpn, roi)`.
fn losses_of(value: f32, rpn: usize, roi: usize) -> Losses {
    let t = || Tensor::new(value, &Device::Cpu).unwrap();
    Losses {
        rpn_objectness: t(),
        rpn_box_reg: t(),
        classifier: t(),
        box_reg: t(),
        num_samples: crate::model::faster_rcnn::NumSamples { rpn, roi },
    }
}

#[test]
fn ranks_with_unequal_sample_counts_average_to_the_whole_batch_loss() {
    use crate::train::dist::threads::ThreadHub;
    // Rank 0: loss 1.0 over 10 RPN / 40 RoI samples; rank 1: loss 3.0 over 30 / 20. The whole
    // batch's loss is the sample-weighted mean: RPN (10 + 90) / 40 = 2.5, RoI (40 + 60) / 60.
    let hub = ThreadHub::new(2, std::time::Duration::from_secs(20));
    let handles: Vec<_> = [(1.0f32, 10, 40, false), (3.0, 30, 20, true)]
        .into_iter()
        .enumerate()
        .map(|(rank, (value, rpn, roi, stop))| {
            let mut c = hub.join(rank);
            std::thread::spawn(move || {
                let (scaled, stop) =
                    share_of_batch(losses_of(value, rpn, roi), 7, &mut c, stop, &mut 0.0).unwrap();
                (scaled.values().unwrap(), stop)
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mean = |k: usize| (got[0].0[k].1 + got[1].0[k].1) / 2.0;
    assert!((mean(0) - 2.5).abs() < 1e-6, "rpn objectness {}", mean(0));
    assert!((mean(1) - 2.5).abs() < 1e-6, "rpn box reg {}", mean(1));
    assert!(
        (mean(2) - 100.0 / 60.0).abs() < 1e-6,
        "classifier {}",
        mean(2)
    );
    assert!((mean(3) - 100.0 / 60.0).abs() < 1e-6, "box reg {}", mean(3));
    assert!(got[0].1 && got[1].1, "a stop asked on one rank stops both");
}

#[test]
fn a_non_finite_loss_on_one_rank_stops_the_other() {
    use crate::train::dist::threads::ThreadHub;
    let hub = ThreadHub::new(2, std::time::Duration::from_secs(20));
    let handles: Vec<_> = [1.0f32, f32::NAN]
        .into_iter()
        .enumerate()
        .map(|(rank, value)| {
            let mut c = hub.join(rank);
            std::thread::spawn(move || {
                share_of_batch(losses_of(value, 8, 8), 4, &mut c, false, &mut 0.0)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let err = got[0].clone().unwrap_err();
    assert!(
        err.contains("iteration 4: another rank's loss is non-finite"),
        "{err}"
    );
    assert!(
        got[1].is_ok(),
        "the rank with the NaN reports it itself, after this"
    );
}
