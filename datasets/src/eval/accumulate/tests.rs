use super::*;

/// pycocotools' accumulate loop for one setting, written out literally.
fn naive(flags: &[(u16, u16)], bit: u16, n_pos: f64) -> (Vec<f64>, f64) {
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut rc, mut pr) = (Vec::new(), Vec::new());
    for &(matched, ignored) in flags {
        if ignored & bit == 0 {
            if matched & bit != 0 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
        rc.push(tp / n_pos);
        pr.push(tp / (fp + tp + EPSILON));
    }
    for i in (1..pr.len()).rev() {
        if pr[i] > pr[i - 1] {
            pr[i - 1] = pr[i];
        }
    }
    let q = (0..R)
        .map(|r| {
            let i = rc.partition_point(|&x| x < recall_threshold(r));
            pr.get(i).copied().unwrap_or(0.0)
        })
        .collect();
    (q, rc.last().copied().unwrap_or(0.0))
}

#[test]
fn curve_from_true_positives_equals_the_literal_loop() {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut buffer = Vec::new();
    for case in 0..500 {
        let n = (next() % 60) as usize;
        let flags: Vec<(u16, u16)> = (0..n)
            .map(|_| {
                let v = next();
                ((v & 1) as u16, ((v >> 1) % 5 == 0) as u16)
            })
            .collect();
        let tps = flags.iter().filter(|f| f.0 == 1 && f.1 == 0).count();
        let n_pos = (tps + (next() % 7) as usize).max(1) as f64;
        let (expected, expected_recall) = naive(&flags, 1, n_pos);
        let mut got = vec![0.0; R];
        let recall = precision_at_recalls(&flags, 1, n_pos, &mut buffer, &mut got);
        assert_eq!(got, expected, "case {case}");
        assert_eq!(recall, expected_recall, "case {case}");
    }
}
