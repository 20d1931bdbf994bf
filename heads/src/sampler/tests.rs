use super::*;

#[test]
fn caps_positives_and_fills_with_negatives() {
    let mut labels = vec![0i64; 100];
    labels[..40].fill(1);
    labels[90..].fill(-1);
    let mut s = BalancedPositiveNegativeSampler::new(32, 0.25, 7);
    let got = s.sample(&labels);
    assert_eq!(got.positive.len(), 8);
    assert_eq!(got.negative.len(), 24);
    assert!(got.positive.iter().all(|&i| labels[i as usize] == 1));
    assert!(got.negative.iter().all(|&i| labels[i as usize] == 0));
    let mut all = got.all();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 32, "indices are drawn without replacement");
}

#[test]
fn few_positives_leave_room_for_more_negatives() {
    let mut labels = vec![0i64; 50];
    labels[3] = 2;
    let got = BalancedPositiveNegativeSampler::new(16, 0.5, 1).sample(&labels);
    assert_eq!(got.positive, vec![3]);
    assert_eq!(got.negative.len(), 15);
}

#[test]
fn image_without_ground_truth_samples_only_negatives() {
    let labels = vec![0i64; 10];
    let got = BalancedPositiveNegativeSampler::new(256, 0.5, 1).sample(&labels);
    assert!(got.positive.is_empty());
    assert_eq!(got.negative.len(), 10);
}

#[test]
fn same_seed_same_draw_other_seed_other_draw() {
    let labels: Vec<i64> = (0..1000).map(|i| i64::from(i % 3 == 0)).collect();
    let a = BalancedPositiveNegativeSampler::new(64, 0.25, 11).sample(&labels);
    let b = BalancedPositiveNegativeSampler::new(64, 0.25, 11).sample(&labels);
    let c = BalancedPositiveNegativeSampler::new(64, 0.25, 12).sample(&labels);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn each_image_draws_from_its_own_stream() {
    let labels: Vec<i64> = (0..1000).map(|i| i64::from(i % 3 == 0)).collect();
    let mut whole = BalancedPositiveNegativeSampler::new(64, 0.25, 5);
    let batch: Vec<SampledIndices> = (0..4).map(|_| whole.sample(&labels)).collect();
    assert_ne!(batch[0], batch[1], "images of one batch draw differently");
    // A slice of the batch starting at image 2 draws what images 2 and 3 drew.
    let mut slice = BalancedPositiveNegativeSampler::new(64, 0.25, 5).starting_at_image(2);
    assert_eq!(slice.sample(&labels), batch[2]);
    assert_eq!(slice.sample(&labels), batch[3]);
}

/// The dense partial Fisher-Yates the sampler used before `choose_ranks` (the reference its
/// draws must keep equal, so that seeded runs sample as before).
fn dense_choose(rng: &mut SplitMix64, items: &mut Vec<u32>, k: usize) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + rng.below((n - i) as u64) as usize;
        items.swap(i, j);
    }
    items.truncate(k);
}

#[test]
fn sparse_ranks_draw_what_the_dense_shuffle_drew() {
    for (n, k, seed) in [(1000, 128, 3u64), (10, 10, 4), (300_000, 256, 5), (7, 0, 6)] {
        let mut dense: Vec<u32> = (0..n as u32).collect();
        dense_choose(&mut SplitMix64(seed), &mut dense, k);
        assert_eq!(SplitMix64(seed).choose_ranks(n, k), dense, "n {n} k {k}");
    }
}

#[test]
fn device_labels_sample_the_same_indices() -> candle_core::Result<()> {
    let labels: Vec<i64> = (0..5000)
        .map(|i| match i % 7 {
            0 => 1,
            1 | 2 => -1,
            _ => 0,
        })
        .collect();
    let t = Tensor::new(labels.as_slice(), &candle_core::Device::Cpu)?;
    let mut host = BalancedPositiveNegativeSampler::new(256, 0.5, 21);
    let mut device = BalancedPositiveNegativeSampler::new(256, 0.5, 21);
    for _ in 0..3 {
        let want = host.sample(&labels);
        let got = device.sample_tensor(&t)?;
        assert_eq!(got.positive.to_vec1::<u32>()?, want.positive);
        assert_eq!(got.negative.to_vec1::<u32>()?, want.negative);
    }
    Ok(())
}
