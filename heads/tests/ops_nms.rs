//! NMS and batched NMS vs torchvision.ops (identical indices) and vs a naive f64 reference.

mod ops_support;

use candle_core::{DType, Device, Tensor};
use heads::ops::{batched_nms, nms};
use ops_support::{devices, fixture, ints, tensor, to_u32, Rng};

fn expected(v: &serde_json::Value) -> Vec<u32> {
    ints(v).into_iter().map(|i| i as u32).collect()
}

#[test]
fn nms_matches_torchvision_indices() {
    let f = fixture("nms");
    for device in devices() {
        for case in f["nms"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let boxes = tensor(&case["boxes"], &device);
            let scores = tensor(&case["scores"], &device);
            let thr = case["iou_threshold"].as_f64().unwrap();
            let keep = to_u32(&nms(&boxes, &scores, thr).unwrap());
            if case.get("stable").is_some() {
                // Tied scores: we promise torch's stable order (lower index first); the
                // fixture records whether torchvision's unstable sort agreed on this machine.
                assert_eq!(
                    keep,
                    expected(&case["stable"]),
                    "{device:?} {name} (stable tie order)"
                );
                if expected(&case["stable"]) == expected(&case["torchvision"]) {
                    assert_eq!(keep, expected(&case["torchvision"]), "{device:?} {name}");
                }
            } else {
                assert_eq!(keep, expected(&case["torchvision"]), "{device:?} {name}");
            }
        }
    }
}

#[test]
fn batched_nms_matches_torchvision_indices() {
    let f = fixture("nms");
    for device in devices() {
        for case in f["batched_nms"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let boxes = tensor(&case["boxes"], &device);
            let scores = tensor(&case["scores"], &device);
            let ids = ints(&case["idxs"]);
            let n = ids.len();
            let thr = case["iou_threshold"].as_f64().unwrap();
            let idx_i64 = Tensor::from_vec(ids.clone(), n, &device).unwrap();
            let idx_u32 = Tensor::from_vec(
                ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                n,
                &device,
            )
            .unwrap();
            for idxs in [idx_i64, idx_u32] {
                let keep = to_u32(&batched_nms(&boxes, &scores, &idxs, thr).unwrap());
                assert_eq!(
                    keep,
                    expected(&case["torchvision"]),
                    "{device:?} {name} {:?}",
                    idxs.dtype()
                );
            }
        }
    }
}

/// Plain-loop greedy NMS in f64, written from the definition.
fn naive_nms(boxes: &[[f64; 4]], scores: &[f64], thr: f64) -> Vec<u32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
    let area = |b: &[f64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut removed = vec![false; scores.len()];
    let mut keep = Vec::new();
    for (a, &i) in order.iter().enumerate() {
        if removed[i] {
            continue;
        }
        keep.push(i as u32);
        for &j in &order[a + 1..] {
            let (p, q) = (&boxes[i], &boxes[j]);
            let w = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
            let h = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
            let inter = w * h;
            if inter / (area(p) + area(q) - inter) > thr {
                removed[j] = true;
            }
        }
    }
    keep
}

fn random_boxes(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut boxes = Vec::with_capacity(4 * n);
    for _ in 0..n {
        let (cx, cy) = (rng.range(0.0, 100.0), rng.range(0.0, 100.0));
        let (w, h) = (rng.range(5.0, 40.0), rng.range(5.0, 40.0));
        boxes.extend([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
    }
    let scores = (0..n).map(|_| rng.uniform()).collect();
    (boxes, scores)
}

#[test]
fn nms_matches_naive_f64_reference() {
    let mut rng = Rng::new(7);
    for device in devices() {
        for (n, thr) in [(50, 0.5), (400, 0.7), (400, 0.3), (1500, 0.6)] {
            let (b, s) = random_boxes(&mut rng, n);
            let b64: Vec<[f64; 4]> = b
                .chunks_exact(4)
                .map(|c| [c[0] as f64, c[1] as f64, c[2] as f64, c[3] as f64])
                .collect();
            let s64: Vec<f64> = s.iter().map(|&v| v as f64).collect();
            let boxes = Tensor::from_vec(b, (n, 4), &device).unwrap();
            let scores = Tensor::from_vec(s, n, &device).unwrap();
            let keep = to_u32(&nms(&boxes, &scores, thr).unwrap());
            assert_eq!(
                keep,
                naive_nms(&b64, &s64, thr),
                "{device:?} n={n} thr={thr}"
            );
            // batched with one class is plain NMS, on both torchvision paths (<= and > 1,000).
            let one = Tensor::zeros(n, DType::U32, &device).unwrap();
            assert_eq!(
                to_u32(&batched_nms(&boxes, &scores, &one, thr).unwrap()),
                keep,
                "{device:?} batched n={n}"
            );
        }
    }
}

#[test]
fn nms_survives_nan_scores_and_boxes() {
    for device in devices() {
        let boxes = Tensor::new(
            &[
                [0f32, 0., 10., 10.],
                [1., 1., 10., 10.],
                [f32::NAN, 0., 5., 5.],
                [0., 0., 10., 10.],
            ],
            &device,
        )
        .unwrap();
        let scores = Tensor::new(&[0.5f32, f32::NAN, 0.9, f32::NAN], &device).unwrap();
        let keep = to_u32(&nms(&boxes, &scores, 0.5).unwrap());
        // NaN scores first (index order), then by score; box 1 suppresses boxes 3 and 0, and
        // box 2's NaN coordinate gives NaN IoUs, which suppress nothing (torchvision: [1, 2]).
        assert_eq!(keep, vec![1, 2], "{device:?}");
        let idxs = Tensor::new(&[0u32, 1, 0, 1], &device).unwrap();
        let keep = to_u32(&batched_nms(&boxes, &scores, &idxs, 0.5).unwrap());
        // The NaN coordinate makes torchvision's class offsets NaN: nothing is suppressed
        // (torchvision: [1, 3, 2, 0]).
        assert_eq!(keep, vec![1, 3, 2, 0], "{device:?}");
    }
}

#[test]
fn nms_rejects_bad_inputs_naming_op_and_argument() {
    let boxes = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    let msg = nms(
        &boxes,
        &Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
        0.5,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("nms")
            && msg.contains("`scores`")
            && msg.contains("[3]")
            && msg.contains("[2]"),
        "{msg}"
    );
    let msg = nms(
        &boxes.to_dtype(DType::F64).unwrap(),
        &Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        0.5,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("`boxes`") && msg.contains("f32") && msg.contains("F64"),
        "{msg}"
    );
    let scores = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    let msg = batched_nms(
        &boxes,
        &scores,
        &Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        0.5,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("batched_nms") && msg.contains("`idxs`") && msg.contains("u32 or i64"),
        "{msg}"
    );
}
