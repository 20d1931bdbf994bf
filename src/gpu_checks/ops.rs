//! Op-level CUDA-vs-CPU checks: every convolution path (cuDNN vs our CPU kernel: forward,
//! dX, dW), NMS and batched NMS on every case of the ops' test fixtures plus a large random
//! one, RoIAlign forward and backward on every fixture case, MultiScaleRoIAlign forward and
//! backward, and the box ops. Limit: 1e-5 absolute (the parity definition for ops); NMS indices
//! identical. Inputs are scaled so that every compared value is of order 1.
use std::path::Path;

use backbones::conv::{conv2d, ConvConfig};
use candle_core::{DType, Device, Result, Tensor, Var};
use heads::ops;
use serde_json::Value;

use super::compare::{max_abs_diff, Check, Rng};

/// Absolute limit for op outputs and gradients (parity definition: ops <= 1e-5 absolute).
pub const OP_LIMIT: f64 = 1e-5;

/// (name, n, c, h, w, cout, k, stride, padding, groups): ResNeXt's grouped 3x3 (stride 1 and
/// stride 2 with H, W of different parity, where candle's backward fails), the 7x7/2 stem,
/// 1x1 at stride 1 and 2, FPN's dense 3x3.
type ConvCase = (&'static str, [usize; 9]);
const CONV_CASES: [ConvCase; 6] = [
    ("grouped 3x3 g=32", [2, 64, 13, 17, 64, 3, 1, 1, 32]),
    ("grouped 3x3/2 g=32 8x9", [2, 64, 8, 9, 64, 3, 2, 1, 32]),
    ("stem 7x7/2", [2, 3, 33, 40, 16, 7, 2, 3, 1]),
    ("1x1", [2, 64, 10, 11, 32, 1, 1, 0, 1]),
    ("1x1/2", [2, 32, 9, 10, 64, 1, 2, 0, 1]),
    ("dense 3x3 (FPN)", [1, 64, 12, 15, 64, 3, 1, 1, 1]),
];

/// Convolution forward, dX and dW on `cuda` against the CPU; `quick` runs two shapes.
pub fn conv(cuda: &Device, quick: bool) -> Vec<Check> {
    let cases = if quick {
        &CONV_CASES[..2]
    } else {
        &CONV_CASES[..]
    };
    let mut out = Vec::new();
    for (i, (name, s)) in cases.iter().enumerate() {
        let names = ["forward", "dX", "dW"].map(|d| format!("conv {name} {d}"));
        match conv_case(cuda, *s, i as u64) {
            Ok(errs) => {
                for (n, e) in names.into_iter().zip(errs) {
                    out.push(Check::within(n, "max|Δ|", e, OP_LIMIT));
                }
            }
            Err(e) => out.push(Check::failed(format!("conv {name}"), &e)),
        }
    }
    out
}

fn conv_case(cuda: &Device, s: [usize; 9], seed: u64) -> Result<[f64; 3]> {
    let [n, c, h, w, cout, k, stride, pad, groups] = s;
    let (ho, wo) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    let mut rng = Rng::new(seed + 11);
    let x = rng.tensor(&[n, c, h, w], -1.0, 1.0)?;
    let bound = 1.0 / ((c / groups * k * k) as f32).sqrt();
    let wt = rng.tensor(&[cout, c / groups, k, k], -bound, bound)?;
    let g_scale = 1.0 / ((n * ho * wo) as f32).sqrt();
    let g = rng.tensor(&[n, cout, ho, wo], -g_scale, g_scale)?;
    let run = |dev: &Device| -> Result<[Tensor; 3]> {
        let xv = Var::from_tensor(&x.to_device(dev)?)?;
        let wv = Var::from_tensor(&wt.to_device(dev)?)?;
        let y = conv2d(
            xv.as_tensor(),
            wv.as_tensor(),
            ConvConfig::new(stride, pad, groups),
        )?;
        let grads = (&y * g.to_device(dev)?)?.sum_all()?.backward()?;
        let get = |v: &Var, what: &str| {
            grads
                .get(v)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("no gradient for {what}")))
        };
        Ok([y, get(&xv, "x")?, get(&wv, "w")?])
    };
    let (a, b) = (run(&Device::Cpu)?, run(cuda)?);
    Ok([
        max_abs_diff(&b[0], &a[0])?,
        max_abs_diff(&b[1], &a[1])?,
        max_abs_diff(&b[2], &a[2])?,
    ])
}

/// A fixture of `heads/tests/fixtures/ops/` under the repository `root`.
pub fn fixture(root: &Path, name: &str) -> Result<Value> {
    let path = root.join(format!("heads/tests/fixtures/ops/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| candle_core::Error::Msg(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| candle_core::Error::Msg(format!("parsing {}: {e}", path.display())))
}

/// A `{"shape": [...], "data": [...]}` fixture tensor (non-finite values written as strings).
pub fn fixture_tensor(v: &Value) -> Result<Tensor> {
    let bad = || candle_core::Error::Msg("fixture tensor: expected {shape, data}".into());
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(bad))
        .collect::<Result<_>>()?;
    let data: Vec<f32> = v["data"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|x| match x {
            Value::String(s) => s.parse::<f32>().map_err(|_| bad()),
            x => x.as_f64().map(|x| x as f32).ok_or_else(bad),
        })
        .collect::<Result<_>>()?;
    Tensor::from_vec(data, shape, &Device::Cpu)
}

fn indices(t: &Tensor) -> Result<Vec<u32>> {
    t.to_device(&Device::Cpu)?.to_vec1::<u32>()
}

fn same_indices(name: String, cpu: Result<Tensor>, gpu: Result<Tensor>) -> Check {
    match (cpu.and_then(|t| indices(&t)), gpu.and_then(|t| indices(&t))) {
        (Ok(a), Ok(b)) => {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            let detail = match (a.len() == b.len(), first) {
                (true, None) => format!("{} kept, same", a.len()),
                _ => format!(
                    "{} vs {} kept, first difference at {first:?}",
                    b.len(),
                    a.len()
                ),
            };
            Check::exact(name, a == b, detail)
        }
        (Err(e), _) | (_, Err(e)) => Check::failed(name, &e),
    }
}

/// NMS and batched NMS on every case of the NMS fixture: the same kept indices.
pub fn nms(root: &Path, cuda: &Device) -> Vec<Check> {
    let mut out = Vec::new();
    let f = match fixture(root, "nms") {
        Ok(f) => f,
        Err(e) => return vec![Check::failed("nms fixtures", &e)],
    };
    for (kind, batched) in [("nms", false), ("batched_nms", true)] {
        for case in f[kind].as_array().into_iter().flatten() {
            let name = format!("{kind} {}", case["name"].as_str().unwrap_or("?"));
            let thr = case["iou_threshold"].as_f64().unwrap_or(0.5);
            let run = |dev: &Device| -> Result<Tensor> {
                let b = fixture_tensor(&case["boxes"])?.to_device(dev)?;
                let s = fixture_tensor(&case["scores"])?.to_device(dev)?;
                if !batched {
                    return ops::nms(&b, &s, thr);
                }
                let ids: Vec<i64> = case["idxs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_i64().unwrap_or(-1))
                    .collect();
                let n = ids.len();
                ops::batched_nms(&b, &s, &Tensor::from_vec(ids, n, dev)?, thr)
            };
            out.push(same_indices(name, run(&Device::Cpu), run(cuda)));
        }
    }
    out
}

/// NMS and batched NMS on 4000 random boxes in 20 classes (IoU 0.5): the same kept indices.
pub fn nms_random(cuda: &Device) -> Vec<Check> {
    let mut out = Vec::new();
    let mut rng = Rng::new(7);
    let n = 4000;
    let random = (|| -> Result<(Tensor, Tensor, Tensor)> {
        let xy = rng.vec(2 * n, 0.0, 600.0);
        let wh = rng.vec(2 * n, 4.0, 120.0);
        let boxes: Vec<f32> = (0..n)
            .flat_map(|i| {
                [
                    xy[2 * i],
                    xy[2 * i + 1],
                    xy[2 * i] + wh[2 * i],
                    xy[2 * i + 1] + wh[2 * i + 1],
                ]
            })
            .collect();
        let scores = rng.vec(n, 0.0, 1.0);
        let ids: Vec<u32> = rng.vec(n, 0.0, 20.0).iter().map(|v| *v as u32).collect();
        Ok((
            Tensor::from_vec(boxes, (n, 4), &Device::Cpu)?,
            Tensor::from_vec(scores, n, &Device::Cpu)?,
            Tensor::from_vec(ids, n, &Device::Cpu)?,
        ))
    })();
    match random {
        Ok((b, s, ids)) => {
            let on = |dev: &Device, batched: bool| -> Result<Tensor> {
                let (b, s) = (b.to_device(dev)?, s.to_device(dev)?);
                match batched {
                    true => ops::batched_nms(&b, &s, &ids.to_device(dev)?, 0.5),
                    false => ops::nms(&b, &s, 0.5),
                }
            };
            for (name, batched) in [
                ("nms random 4000", false),
                ("batched_nms random 4000/20", true),
            ] {
                out.push(same_indices(
                    name.into(),
                    on(&Device::Cpu, batched),
                    on(cuda, batched),
                ));
            }
        }
        Err(e) => out.push(Check::failed("nms random", &e)),
    }
    out
}

/// `nonzero` on a 300,000-entry random mask (about 30% set) and `top_k` (k 1000 of 20,000 per
/// row, 3 rows, values on a 1/64 grid so that ties occur, plus k larger than a 50-wide row):
/// the same indices in the same order on both devices.
pub fn nonzero_top_k_random(cuda: &Device) -> Vec<Check> {
    let mut rng = Rng::new(11);
    let mask: Vec<u8> = rng
        .vec(300_000, 0.0, 1.0)
        .iter()
        .map(|v| u8::from(*v < 0.3))
        .collect();
    let wide: Vec<f32> = rng
        .vec(3 * 20_000, 0.0, 4.0)
        .iter()
        .map(|v| (v * 64.0).floor() / 64.0)
        .collect();
    let narrow = rng.vec(2 * 50, -1.0, 1.0);
    let on = |dev: &Device, which: usize| -> Result<Tensor> {
        match which {
            0 => ops::nonzero(&Tensor::from_slice(&mask, mask.len(), dev)?),
            1 => ops::top_k(&Tensor::from_slice(&wide, (3, 20_000), dev)?, 1000),
            _ => ops::top_k(&Tensor::from_slice(&narrow, (2, 50), dev)?, 100),
        }
    };
    [
        "nonzero random 300000",
        "top_k random 3x20000 k 1000 (ties)",
        "top_k random 2x50 k 100",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        let flat = |t: Result<Tensor>| t.and_then(|t| t.flatten_all());
        same_indices((*name).into(), flat(on(&Device::Cpu, i)), flat(on(cuda, i)))
    })
    .collect()
}

/// RoIAlign (7x7, sampling ratio 2, aligned, scale 1/2) forward and gradient on random
/// features `[2, 8, 20, 24]` and 60 random boxes.
pub fn roi_align_random(cuda: &Device) -> Vec<Check> {
    let name = "roi_align random 60 boxes";
    let run = |dev: &Device| -> Result<(Tensor, Tensor)> {
        let mut rng = Rng::new(5);
        let input = Var::from_tensor(&rng.tensor(&[2, 8, 20, 24], -1.0, 1.0)?.to_device(dev)?)?;
        let mut rois = Vec::new();
        for k in 0..60 {
            let (x, y) = (rng.range(-4.0, 44.0), rng.range(-4.0, 36.0));
            let (w, h) = (rng.range(0.5, 20.0), rng.range(0.5, 20.0));
            rois.extend([(k % 2) as f32, x, y, x + w, y + h]);
        }
        let rois = Tensor::from_vec(rois, (60, 5), dev)?;
        let y = ops::roi_align(&input, &rois, (7, 7), 0.5, 2, true)?;
        let g = rng.tensor(&[60, 8, 7, 7], -1.0, 1.0)?.to_device(dev)?;
        let grads = (&y * g)?.sum_all()?.backward()?;
        let dx = grads
            .get(&input)
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
        Ok((y, dx))
    };
    match run(&Device::Cpu).and_then(|a| Ok((a, run(cuda)?))) {
        Ok(((ya, ga), (yb, gb))) => [("forward", ya, yb), ("gradient", ga, gb)]
            .into_iter()
            .map(|(what, a, b)| match max_abs_diff(&b, &a) {
                Ok(e) => Check::within(format!("{name} {what}"), "max|Δ|", e, OP_LIMIT),
                Err(e) => Check::failed(format!("{name} {what}"), &e),
            })
            .collect(),
        Err(e) => vec![Check::failed(name, &e)],
    }
}

/// RoIAlign forward and gradient on every fixture case.
pub fn roi_align(root: &Path, cuda: &Device) -> Vec<Check> {
    let f = match fixture(root, "roi_align") {
        Ok(f) => f,
        Err(e) => return vec![Check::failed("roi_align fixtures", &e)],
    };
    let mut out = Vec::new();
    for case in f["cases"].as_array().into_iter().flatten() {
        let (aligned, sr) = (
            case["aligned"].as_bool().unwrap_or(true),
            case["sampling_ratio"].as_i64().unwrap_or(0),
        );
        let scale = case["spatial_scale"].as_f64().unwrap_or(1.0);
        let name = format!("roi_align aligned={aligned} sr={sr} scale={scale}");
        let run = |dev: &Device| -> Result<(Tensor, Tensor)> {
            let input = Var::from_tensor(&fixture_tensor(&f["input"])?.to_device(dev)?)?;
            let rois = fixture_tensor(&case["rois"])?.to_device(dev)?;
            let size: Vec<usize> = case["output_size"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_u64().unwrap_or(1) as usize)
                .collect();
            let y = ops::roi_align(&input, &rois, (size[0], size[1]), scale, sr, aligned)?;
            let g = fixture_tensor(&case["grad_output"])?.to_device(dev)?;
            let grads = (&y * g)?.sum_all()?.backward()?;
            let dx = grads
                .get(&input)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
            Ok((y, dx))
        };
        match run(&Device::Cpu).and_then(|a| Ok((a, run(cuda)?))) {
            Ok(((ya, ga), (yb, gb))) => {
                for (what, a, b) in [("forward", ya, yb), ("gradient", ga, gb)] {
                    out.push(match max_abs_diff(&b, &a) {
                        Ok(e) => Check::within(format!("{name} {what}"), "max|Δ|", e, OP_LIMIT),
                        Err(e) => Check::failed(format!("{name} {what}"), &e),
                    });
                }
            }
            Err(e) => out.push(Check::failed(name, &e)),
        }
    }
    out
}

/// MultiScaleRoIAlign (FPN levels P2..P5) forward and feature gradients, sampling ratio 0 and 2.
pub fn multi_scale(root: &Path, cuda: &Device) -> Vec<Check> {
    let f = match fixture(root, "multi_scale") {
        Ok(f) => f,
        Err(e) => return vec![Check::failed("multi_scale fixtures", &e)],
    };
    let sizes: Vec<(usize, usize)> = f["image_sizes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s[0].as_u64().unwrap_or(1) as usize,
                s[1].as_u64().unwrap_or(1) as usize,
            )
        })
        .collect();
    let mut out = Vec::new();
    for sr in [0i64, 2] {
        let name = format!("MultiScaleRoIAlign sr={sr}");
        let run = |dev: &Device| -> Result<Vec<Tensor>> {
            let vars: Vec<Var> = f["features"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Var::from_tensor(&fixture_tensor(t)?.to_device(dev)?))
                .collect::<Result<_>>()?;
            let feats: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let boxes: Vec<Tensor> = f["boxes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| fixture_tensor(t)?.to_device(dev))
                .collect::<Result<_>>()?;
            let y = ops::MultiScaleRoiAlign::new((3, 3), sr).forward(&feats, &boxes, &sizes)?;
            let g = fixture_tensor(&f[format!("sr{sr}")]["grad_output"])?.to_device(dev)?;
            let grads = (&y * g)?.sum_all()?.backward()?;
            let mut all = vec![y];
            for v in &vars {
                all.push(grads.get(v).cloned().unwrap_or(v.zeros_like()?));
            }
            Ok(all)
        };
        match run(&Device::Cpu).and_then(|a| Ok((a, run(cuda)?))) {
            Ok((a, b)) => {
                let worst = a.iter().zip(&b).try_fold(0.0f64, |m, (x, y)| {
                    Ok::<_, candle_core::Error>(m.max(max_abs_diff(y, x)?))
                });
                out.push(match worst {
                    Ok(e) => {
                        Check::within(format!("{name} forward+gradients"), "max|Δ|", e, OP_LIMIT)
                    }
                    Err(e) => Check::failed(name, &e),
                });
            }
            Err(e) => out.push(Check::failed(name, &e)),
        }
    }
    out
}

/// box_iou, box_area, clip_boxes_to_image, remove_small_boxes on the boxes fixture.
pub fn boxes(root: &Path, cuda: &Device) -> Vec<Check> {
    let run = |dev: &Device| -> Result<Vec<Tensor>> {
        let f = fixture(root, "boxes")?;
        let a = fixture_tensor(&f["a"])?.to_device(dev)?;
        let b = fixture_tensor(&f["b"])?.to_device(dev)?;
        let size = (
            f["clip_size"][0].as_u64().unwrap_or(1) as usize,
            f["clip_size"][1].as_u64().unwrap_or(1) as usize,
        );
        let keep = ops::remove_small_boxes(&a, f["min_size"].as_f64().unwrap_or(1.0))?;
        Ok(vec![
            ops::box_area(&a)?,
            ops::box_iou(&a, &b)?,
            ops::clip_boxes_to_image(&a, size)?,
            keep.to_dtype(DType::F32)?,
        ])
    };
    match run(&Device::Cpu).and_then(|a| Ok((a, run(cuda)?))) {
        Ok((a, b)) => {
            let worst = a.iter().zip(&b).try_fold(0.0f64, |m, (x, y)| {
                Ok::<_, candle_core::Error>(m.max(max_abs_diff(y, x)?))
            });
            vec![match worst {
                Ok(e) => Check::within(
                    "box ops (area, iou, clip, remove_small)",
                    "max|Δ|",
                    e,
                    OP_LIMIT,
                ),
                Err(e) => Check::failed("box ops", &e),
            }]
        }
        Err(e) => vec![Check::failed("box ops", &e)],
    }
}

/// Image-sized uploads (`transfer::to_device`, through pinned memory on CUDA) come back equal to
/// what was sent: three batches, the third larger (the staging buffers grow), each used on the
/// device right away (a sum, so the compute stream reads what the copy stream wrote).
pub fn upload_round_trip(cuda: &Device) -> Vec<Check> {
    let mut rng = Rng::new(13);
    [(2, 3, 256, 256), (2, 3, 256, 256), (4, 3, 320, 352)]
        .iter()
        .enumerate()
        .map(|(i, &shape)| {
            let name = format!("upload batch {i} {shape:?} (pinned on CUDA)");
            let mut run = || -> Result<(bool, f64, f64)> {
                let (n, c, h, w) = shape;
                let host = rng.tensor(&[n, c, h, w], -2.0, 2.0)?;
                let up = heads::ops::transfer::to_device(&host, cuda)?;
                let sum_dev = up.sum_all()?.to_device(&Device::Cpu)?.to_scalar::<f32>()? as f64;
                let sum_host = host.sum_all()?.to_scalar::<f32>()? as f64;
                let back = up.to_device(&Device::Cpu)?;
                let equal = back.eq(&host)?.min_all()?.to_scalar::<u8>()? == 1;
                Ok((equal, sum_dev, sum_host))
            };
            match run() {
                Ok((equal, a, b)) => Check::exact(
                    name,
                    equal && (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                    format!("values equal: {equal}; sums {a:.4} vs {b:.4}"),
                ),
                Err(e) => Check::failed(name, &e),
            }
        })
        .collect()
}
