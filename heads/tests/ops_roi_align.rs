//! RoIAlign forward and backward vs torchvision.ops.roi_align, a naive f64 reference, and
//! finite differences.

mod ops_support;

use candle_core::{DType, Device, Tensor, Var};
use heads::ops::roi_align;
use ops_support::{devices, fixture, floats, ints, max_abs_diff, tensor, to_f32, Rng};

/// Forward: same f32 sample arithmetic as torchvision, only the summation order may differ.
const FWD_TOL: f32 = 1e-5;
/// Backward: gradients accumulate many scattered f32 contributions in another order.
const GRAD_TOL: f32 = 1e-4;

#[test]
fn roi_align_matches_torchvision_forward_and_grad() {
    let f = fixture("roi_align");
    for device in devices() {
        for case in f["cases"].as_array().unwrap() {
            let input = Var::from_tensor(&tensor(&f["input"], &device)).unwrap();
            let rois = tensor(&case["rois"], &device);
            let size = ints(&case["output_size"]);
            let (aligned, sr) = (
                case["aligned"].as_bool().unwrap(),
                case["sampling_ratio"].as_i64().unwrap(),
            );
            let scale = case["spatial_scale"].as_f64().unwrap();
            let what = format!("{device:?} aligned={aligned} sr={sr} scale={scale}");
            let out = roi_align(
                &input,
                &rois,
                (size[0] as usize, size[1] as usize),
                scale,
                sr,
                aligned,
            )
            .unwrap();
            let diff = max_abs_diff(&to_f32(&out), &floats(&case["output"]["data"]));
            assert!(diff <= FWD_TOL, "{what}: forward differs by {diff}");
            let grad_out = tensor(&case["grad_output"], &device);
            let grads = (out * grad_out)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grad = grads.get(&input).expect("gradient w.r.t. the features");
            let diff = max_abs_diff(&to_f32(grad), &floats(&case["grad_input"]["data"]));
            assert!(diff <= GRAD_TOL, "{what}: gradient differs by {diff}");
        }
    }
}

/// Plain-loop RoIAlign in f64, written from the definition (sample grid at bin sub-cell
/// centres, bilinear interpolation with border clamping, zero beyond one pixel outside).
#[allow(clippy::too_many_arguments)]
fn naive_roi_align(
    x: &[f64],
    (n, c, h, w): (usize, usize, usize, usize),
    rois: &[[f64; 5]],
    (oh, ow): (usize, usize),
    scale: f64,
    sr: i64,
    aligned: bool,
) -> Vec<f64> {
    let _ = n;
    let mut out = vec![0.0; rois.len() * c * oh * ow];
    let at = |b: usize, ch: usize, y: usize, xx: usize| x[((b * c + ch) * h + y) * w + xx];
    for (k, r) in rois.iter().enumerate() {
        let off = if aligned { 0.5 } else { 0.0 };
        let (x1, y1) = (r[1] * scale - off, r[2] * scale - off);
        let (mut rw, mut rh) = (r[3] * scale - off - x1, r[4] * scale - off - y1);
        if !aligned {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let (bh, bw) = (rh / oh as f64, rw / ow as f64);
        let gh = if sr > 0 {
            sr as usize
        } else {
            (rh / oh as f64).ceil().max(0.0) as usize
        };
        let gw = if sr > 0 {
            sr as usize
        } else {
            (rw / ow as f64).ceil().max(0.0) as usize
        };
        let count = (gh * gw).max(1) as f64;
        for ch in 0..c {
            for py in 0..oh {
                for px in 0..ow {
                    let mut sum = 0.0;
                    for iy in 0..gh {
                        for ix in 0..gw {
                            let mut y = y1 + py as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                            let mut xx = x1 + px as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                            if y < -1.0 || y > h as f64 || xx < -1.0 || xx > w as f64 {
                                continue;
                            }
                            y = y.max(0.0);
                            xx = xx.max(0.0);
                            let (mut y0, mut x0) = (y.floor() as usize, xx.floor() as usize);
                            let (y1i, x1i);
                            if y0 >= h - 1 {
                                y0 = h - 1;
                                y1i = h - 1;
                                y = y0 as f64;
                            } else {
                                y1i = y0 + 1;
                            }
                            if x0 >= w - 1 {
                                x0 = w - 1;
                                x1i = w - 1;
                                xx = x0 as f64;
                            } else {
                                x1i = x0 + 1;
                            }
                            let (ly, lx) = (y - y0 as f64, xx - x0 as f64);
                            let b = r[0] as usize;
                            sum += (1.0 - ly) * (1.0 - lx) * at(b, ch, y0, x0)
                                + (1.0 - ly) * lx * at(b, ch, y0, x1i)
                                + ly * (1.0 - lx) * at(b, ch, y1i, x0)
                                + ly * lx * at(b, ch, y1i, x1i);
                        }
                    }
                    out[((k * c + ch) * oh + py) * ow + px] = sum / count;
                }
            }
        }
    }
    out
}

fn random_problem(
    rng: &mut Rng,
    dims: (usize, usize, usize, usize),
    k: usize,
    extent: f32,
) -> (Vec<f32>, Vec<[f32; 5]>) {
    let (n, c, h, w) = dims;
    let x: Vec<f32> = (0..n * c * h * w).map(|_| rng.range(-1.0, 1.0)).collect();
    let rois = (0..k)
        .map(|_| {
            let (xa, xb) = (rng.range(-4.0, extent), rng.range(-4.0, extent));
            let (ya, yb) = (rng.range(-4.0, extent), rng.range(-4.0, extent));
            [
                (rng.uniform() * n as f32).floor().min(n as f32 - 1.0),
                xa.min(xb),
                ya.min(yb),
                xa.max(xb),
                ya.max(yb),
            ]
        })
        .collect();
    (x, rois)
}

#[test]
fn roi_align_matches_naive_f64_reference() {
    let mut rng = Rng::new(11);
    let dims = (2, 5, 9, 14);
    for device in devices() {
        for (aligned, sr, scale, out) in [
            (false, 2, 0.5, (7, 7)),
            (true, 0, 0.5, (3, 4)),
            (false, 0, 1.0, (2, 5)),
            (true, 3, 0.25, (7, 7)),
        ] {
            let (x, rois) = random_problem(&mut rng, dims, 20, 14.0 / scale as f32);
            let input = Tensor::from_vec(x.clone(), dims, &device).unwrap();
            let flat: Vec<f32> = rois.iter().flatten().copied().collect();
            let r = Tensor::from_vec(flat, (rois.len(), 5), &device).unwrap();
            let ours = to_f32(&roi_align(&input, &r, out, scale, sr, aligned).unwrap());
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let r64: Vec<[f64; 5]> = rois.iter().map(|r| r.map(f64::from)).collect();
            let reference = naive_roi_align(&x64, dims, &r64, out, scale, sr, aligned);
            let reference: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
            let diff = max_abs_diff(&ours, &reference);
            assert!(
                diff <= FWD_TOL,
                "{device:?} aligned={aligned} sr={sr}: differs from the f64 reference by {diff}"
            );
        }
    }
}

#[test]
fn roi_align_gradient_matches_finite_differences() {
    let mut rng = Rng::new(5);
    let dims = (2, 3, 8, 11);
    for device in devices() {
        for (aligned, sr) in [(false, 2), (true, 0)] {
            let (x, rois) = random_problem(&mut rng, dims, 12, 11.0);
            let flat: Vec<f32> = rois.iter().flatten().copied().collect();
            let r = Tensor::from_vec(flat, (rois.len(), 5), &device).unwrap();
            let g = Tensor::from_vec(
                (0..12 * 3 * 4 * 3)
                    .map(|_| rng.range(-1.0, 1.0))
                    .collect::<Vec<f32>>(),
                (12, 3, 4, 3),
                &device,
            )
            .unwrap();
            let problem = (&x[..], dims, &r, (4, 3), sr, aligned);
            backward_matches_finite_differences(&device, problem, &g, 7);
        }
    }
}

/// `(x, dims of x, rois, output_size, sampling_ratio, aligned)` of one roi_align call.
type Problem<'a> = (
    &'a [f32],
    (usize, usize, usize, usize),
    &'a Tensor,
    (usize, usize),
    i64,
    bool,
);

/// Checks the backward of `sum(roi_align(x) * g)` against central differences at every
/// `stride`-th element of `x`; returns the backward's gradient. RoIAlign is linear in the
/// features, so a central difference with a large step is exact up to f32 rounding of the loss
/// (a sum of ~K*C*bins terms): 2e-3 absolute.
fn backward_matches_finite_differences(
    device: &Device,
    (x, dims, r, out, sr, aligned): Problem,
    g: &Tensor,
    stride: usize,
) -> Vec<f32> {
    let loss = |x: &Tensor| -> f32 {
        let y = roi_align(x, r, out, 1.0, sr, aligned).unwrap();
        (y * g).unwrap().sum_all().unwrap().to_scalar().unwrap()
    };
    let var = Var::from_tensor(&Tensor::from_vec(x.to_vec(), dims, device).unwrap()).unwrap();
    let y = roi_align(&var, r, out, 1.0, sr, aligned).unwrap();
    let grads = (y * g).unwrap().sum_all().unwrap().backward().unwrap();
    let analytic = to_f32(grads.get(&var).unwrap());
    let step = 0.5f32;
    for i in (0..x.len()).step_by(stride) {
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[i] += step;
        minus[i] -= step;
        let fd = (loss(&Tensor::from_vec(plus, dims, device).unwrap())
            - loss(&Tensor::from_vec(minus, dims, device).unwrap()))
            / (2.0 * step);
        assert!(
            (fd - analytic[i]).abs() <= 2e-3,
            "{device:?} sr={sr} aligned={aligned} element {i}: fd {fd} vs backward {}",
            analytic[i]
        );
    }
    analytic
}

#[test]
fn roi_align_with_no_rois_is_empty_and_has_zero_gradient() {
    for device in devices() {
        let var =
            Var::from_tensor(&Tensor::ones((1, 4, 5, 5), DType::F32, &device).unwrap()).unwrap();
        let rois = Tensor::zeros((0, 5), DType::F32, &device).unwrap();
        let y = roi_align(&var, &rois, (7, 7), 1.0, 2, false).unwrap();
        assert_eq!(y.dims(), &[0, 4, 7, 7]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(to_f32(grads.get(&var).unwrap()), vec![0.0; 100]);
    }
}

#[test]
fn roi_align_rejects_bad_inputs_naming_op_and_argument() {
    let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let msg = roi_align(
        &x,
        &Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap(),
        (2, 2),
        1.0,
        2,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("roi_align")
            && msg.contains("`rois`")
            && msg.contains("[N, 5]")
            && msg.contains("[3, 4]"),
        "{msg}"
    );
    let rois = Tensor::new(&[[1f32, 0., 0., 2., 2.]], &Device::Cpu).unwrap();
    let msg = roi_align(&x, &rois, (2, 2), 1.0, 2, false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("roi_align") && msg.contains("batch index 1"),
        "{msg}"
    );
    let msg = roi_align(
        &x.to_dtype(DType::F64).unwrap(),
        &rois,
        (2, 2),
        1.0,
        2,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("`input`") && msg.contains("F64"), "{msg}");
    let msg = roi_align(&x, &rois, (0, 2), 1.0, 2, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`output_size`"), "{msg}");
}

#[test]
fn wide_rois_with_few_samples_match_the_f64_reference_and_finite_differences() {
    // RoIs 50-130 px wide with 1-2 samples per bin: their column taps lie tens of pixels
    // apart, so the CPU kernel reads a list of columns instead of one run (the other path of
    // its separable interpolation; the tests above only make dense runs).
    let mut rng = Rng::new(23);
    let dims = (2, 3, 6, 140);
    let (n, c, h, w) = dims;
    for device in devices() {
        for (sr, out) in [(1, (3, 2)), (2, (2, 3))] {
            let x: Vec<f32> = (0..n * c * h * w).map(|_| rng.range(-1.0, 1.0)).collect();
            let rois: Vec<[f32; 5]> = (0..6)
                .map(|i| {
                    let x1 = rng.range(-4.0, 30.0);
                    let y1 = rng.range(-1.0, 2.0);
                    [
                        (i % 2) as f32,
                        x1,
                        y1,
                        x1 + rng.range(50.0, 130.0),
                        y1 + 4.0,
                    ]
                })
                .collect();
            let flat: Vec<f32> = rois.iter().flatten().copied().collect();
            let r = Tensor::from_vec(flat, (rois.len(), 5), &device).unwrap();
            let input = Tensor::from_vec(x.clone(), dims, &device).unwrap();
            let ours = to_f32(&roi_align(&input, &r, out, 1.0, sr, false).unwrap());
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let r64: Vec<[f64; 5]> = rois.iter().map(|r| r.map(f64::from)).collect();
            let reference = naive_roi_align(&x64, dims, &r64, out, 1.0, sr, false);
            let reference: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
            let diff = max_abs_diff(&ours, &reference);
            // Sample coordinates near x = 130 are f32 (as in torchvision) and off from the f64
            // reference's by up to half an ulp of 128, 7.6e-6 px; times neighbouring pixels
            // up to 2 apart that moves a sample by 1.5e-5, so 4e-5 here (1e-5 on small maps).
            assert!(diff <= 4e-5, "{device:?} sr={sr}: forward off by {diff}");

            // Backward against central differences.
            let g = Tensor::from_vec(
                (0..ours.len())
                    .map(|_| rng.range(-1.0, 1.0))
                    .collect::<Vec<f32>>(),
                (rois.len(), c, out.0, out.1),
                &device,
            )
            .unwrap();
            let problem = (&x[..], dims, &r, out, sr, false);
            let analytic = backward_matches_finite_differences(&device, problem, &g, 5);
            assert!(
                analytic.iter().any(|&v| v != 0.0),
                "no gradient reached the input"
            );
        }
    }
}
