//! MultiScaleRoiAlign vs torchvision.ops.MultiScaleRoIAlign (forward and gradients).

mod ops_support;

use candle_core::{DType, Device, Tensor, Var};
use heads::ops::MultiScaleRoiAlign;
use ops_support::{devices, fixture, floats, ints, max_abs_diff, tensor, to_f32};

/// Same per-sample arithmetic as torchvision (see ops_roi_align.rs for the tolerances).
const FWD_TOL: f32 = 1e-5;
const GRAD_TOL: f32 = 1e-4;

#[test]
fn multi_scale_roi_align_matches_torchvision() {
    let f = fixture("multi_scale");
    let sizes: Vec<(usize, usize)> = f["image_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let s = ints(s);
            (s[0] as usize, s[1] as usize)
        })
        .collect();
    for device in devices() {
        for sr in [0i64, 2] {
            let case = &f[format!("sr{sr}")];
            let vars: Vec<Var> = f["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| Var::from_tensor(&tensor(t, &device)).unwrap())
                .collect();
            let features: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let boxes: Vec<Tensor> = f["boxes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| tensor(t, &device))
                .collect();
            let pooler = MultiScaleRoiAlign::new((3, 3), sr);
            let out = pooler.forward(&features, &boxes, &sizes).unwrap();
            assert_eq!(out.dims(), &[16, 2, 3, 3]);
            let diff = max_abs_diff(&to_f32(&out), &floats(&case["output"]["data"]));
            assert!(
                diff <= FWD_TOL,
                "{device:?} sr={sr}: forward differs by {diff}"
            );
            let grads = (out * tensor(&case["grad_output"], &device))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (level, (v, expected)) in vars
                .iter()
                .zip(case["grad_features"].as_array().unwrap())
                .enumerate()
            {
                let diff = max_abs_diff(&to_f32(grads.get(v).unwrap()), &floats(&expected["data"]));
                assert!(
                    diff <= GRAD_TOL,
                    "{device:?} sr={sr} level {level}: gradient differs by {diff}"
                );
            }
        }
    }
}

#[test]
fn multi_scale_roi_align_keeps_input_order_and_handles_empty_images() {
    for device in devices() {
        // One level per box size; each level constant = its index, so the output shows which
        // level every box was pooled from.
        let features: Vec<Tensor> = (0..4)
            .map(|l| {
                (Tensor::ones((3, 1, 64 >> l, 64 >> l), DType::F32, &device).unwrap() * l as f64)
                    .unwrap()
            })
            .collect();
        let boxes = vec![
            Tensor::new(&[[0f32, 0., 250., 250.], [0., 0., 20., 20.]], &device).unwrap(),
            Tensor::zeros((0, 4), DType::F32, &device).unwrap(), // an image with no boxes
            Tensor::new(&[[0f32, 0., 120., 120.]], &device).unwrap(),
        ];
        let out = MultiScaleRoiAlign::new((2, 2), 2)
            .forward(&features, &boxes, &[(256, 256); 3])
            .unwrap();
        let per_box: Vec<f32> = to_f32(&out).chunks(4).map(|c| c[0]).collect();
        // 250 px → P4 (index 2), 20 px → P2 (index 0), 120 px → P3 (index 1).
        assert_eq!(per_box, vec![2.0, 0.0, 1.0], "{device:?}");
    }
}

#[test]
fn multi_scale_roi_align_rejects_bad_inputs() {
    let f = Tensor::zeros((1, 2, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
    let pooler = MultiScaleRoiAlign::new((2, 2), 2);
    let msg = pooler
        .forward(std::slice::from_ref(&f), std::slice::from_ref(&b), &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("MultiScaleRoiAlign") && msg.contains("`image_sizes`"),
        "{msg}"
    );
    let msg = pooler
        .forward(
            &[
                f.clone(),
                Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap(),
            ],
            std::slice::from_ref(&b),
            &[(32, 32)],
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`features`") && msg.contains("[1, 2, H, W]") && msg.contains("[1, 3, 4, 4]"),
        "{msg}"
    );
    let msg = pooler
        .forward(&[], &[b], &[(32, 32)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`features`"), "{msg}");
}
