use super::*;

#[test]
fn canonical_box_maps_to_level_four() {
    // P2..P5: k_min = 2, k_max = 5; index = level - 2.
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 224.0, 224.0], 2, 5), Some(2));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 112.0, 112.0], 2, 5), Some(1));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 111.0, 112.0], 2, 5), Some(0));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 2000.0, 2000.0], 2, 5), Some(3));
    assert_eq!(map_level(&[0.0, 0.0, 0.0, 0.0, 0.0], 2, 5), Some(0));
    assert_eq!(map_level(&[0.0, 5.0, 0.0, 0.0, 10.0], 2, 5), None);
}

#[test]
fn scales_round_to_powers_of_two() {
    assert_eq!(infer_scale(200, 800), 0.25);
    assert_eq!(infer_scale(25, 800), 1.0 / 32.0);
    assert_eq!(infer_scale(13, 100), 0.125);
}

/// `[n, 4]` boxes `s x 0.8|s|` (px) at deterministic positions in a 256x256 image.
fn boxes_of_sides(sides: &[f32]) -> Tensor {
    let flat: Vec<f32> = sides
        .iter()
        .enumerate()
        .flat_map(|(i, &s)| {
            let (x, y) = ((i * 37 % 200) as f32, (i * 53 % 180) as f32);
            [x, y, x + s, y + s.abs() * 0.8] // s < 0: a negative area
        })
        .collect();
    Tensor::from_vec(flat, (sides.len(), 4), &candle_core::Device::Cpu).unwrap()
}

/// The direct CPU path (stages reading each level in place) against the per-level path
/// (roi_align per level, then cat + index_select, differentiated by candle), for stage chains
/// of every shape: one level (one stage, one argument), two used levels (two arguments),
/// three (a two-level stage whose rest is a one-level stage) and five (two chained rests).
/// Both use the same RoIAlign kernel and add gradients in the same row order, so they agree
/// exactly; unassigned rows (a box with a negative area) are zero in both.
#[test]
fn staged_pooling_matches_per_level_pooling_and_its_gradients() {
    let cases: [(usize, Vec<f32>); 4] = [
        (1, vec![20.0, 300.0, 90.0]),
        (4, vec![20.0, 30.0, 130.0, 40.0]),
        (4, vec![20.0, 300.0, 30.0, 130.0, 40.0, 150.0, -10.0]),
        (
            5,
            vec![
                20.0, 900.0, 300.0, 30.0, 130.0, 2500.0, 40.0, 150.0, 600.0, 25.0,
            ],
        ),
    ];
    let pooler = MultiScaleRoiAlign::new((2, 3), 2);
    let sizes = [(256usize, 256usize), (256, 256)];
    for (case, (levels, sides)) in cases.into_iter().enumerate() {
        let vars: Vec<candle_core::Var> = (0..levels)
            .map(|l| {
                let shape = (2, 3, 64 >> l, 64 >> l);
                let x = Tensor::randn(0f32, 1.0, shape, &candle_core::Device::Cpu).unwrap();
                candle_core::Var::from_tensor(&x).unwrap()
            })
            .collect();
        let features: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (half, rest) = sides.split_at(sides.len() / 2);
        let boxes = [boxes_of_sides(half), boxes_of_sides(rest)];
        let scales: Vec<f64> = features
            .iter()
            .map(|f| infer_scale(f.dim(2).unwrap(), 256))
            .collect();
        let (k_min, k_max) = (2, 1 + levels as i64);
        let mut rois: Vec<[f32; 5]> = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            for r in b.to_vec2::<f32>().unwrap() {
                rois.push([i as f32, r[0], r[1], r[2], r[3]]);
            }
        }
        let assigned: Vec<Option<usize>> = rois
            .iter()
            .map(|r| match levels {
                1 => Some(0),
                _ => map_level(r, k_min, k_max),
            })
            .collect();
        let params: Vec<Params> = scales.iter().map(|&s| pooler.params(s)).collect();
        let direct = stage::pool(&features, &params, &rois, &assigned).unwrap();
        let flat_rois: Vec<f32> = rois.iter().flatten().copied().collect();
        let rois_t =
            Tensor::from_vec(flat_rois, (rois.len(), 5), &candle_core::Device::Cpu).unwrap();
        let levels_t: Vec<i64> = assigned
            .iter()
            .map(|l| l.map_or(NO_LEVEL, |l| l as i64))
            .collect();
        let levels_t = Tensor::new(levels_t.as_slice(), &candle_core::Device::Cpu).unwrap();
        // The level tensor of the CUDA path agrees with the CPU kernel's assignment.
        let computed = levels_tensor(&rois_t, k_min, k_max, levels).unwrap();
        assert_eq!(
            computed.to_vec1::<i64>().unwrap(),
            levels_t.to_vec1::<i64>().unwrap(),
            "case {case}: levels"
        );
        let reference =
            per_level::pool(&features, &scales, &pooler, &rois_t, &levels_t, 3).unwrap();
        assert_eq!(direct.dims(), &[sides.len(), 3, 2, 3]);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&direct), flat(&reference), "case {case}: forward");
        // The public entry point takes the direct path on the CPU.
        let public = pooler.forward(&features, &boxes, &sizes).unwrap();
        assert_eq!(flat(&public), flat(&reference), "case {case}: forward()");
        let g = Tensor::randn(0f32, 1.0, direct.dims(), &candle_core::Device::Cpu).unwrap();
        let gd = (direct * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gr = (reference * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (l, v) in vars.iter().enumerate() {
            let (d, r) = (gd.get(v).map(flat), gr.get(v).map(flat));
            assert_eq!(d, r, "case {case}: gradient of level {l}");
        }
    }
}

#[test]
fn level_tensor_matches_the_host_equation_on_many_sizes() {
    // Sides from 1 to ~1500 px (with 112 and 224, the boundaries), aspect ratios 0.5..2, and a
    // negative area (no level).
    let mut rows: Vec<[f32; 5]> = Vec::new();
    for i in 0..2000 {
        let side = 1.0 + i as f32 * 0.75;
        let ratio = 0.5 + (i % 7) as f32 / 4.0;
        rows.push([0.0, 3.0, 5.0, 3.0 + side * ratio, 5.0 + side / ratio]);
    }
    rows.push([0.0, 0.0, 0.0, 112.0, 112.0]);
    rows.push([0.0, 0.0, 0.0, 224.0, 224.0]);
    rows.push([1.0, 10.0, 0.0, 0.0, 10.0]);
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let t = Tensor::from_vec(flat, (rows.len(), 5), &candle_core::Device::Cpu).unwrap();
    let got = levels_tensor(&t, 2, 5, 4)
        .unwrap()
        .to_vec1::<i64>()
        .unwrap();
    let want: Vec<i64> = rows
        .iter()
        .map(|r| map_level(r, 2, 5).map_or(NO_LEVEL, |l| l as i64))
        .collect();
    assert_eq!(got, want);
}
