use super::sampling::{sampling, tap, Tap};
use super::*;

fn params(pooled: usize, sampling_ratio: i64) -> Params {
    Params {
        pooled_h: pooled,
        pooled_w: pooled,
        spatial_scale: 1.0,
        sampling_ratio,
        aligned: false,
    }
}

fn dims(n: usize, h: usize, w: usize) -> Dims {
    Dims { n, c: 1, h, w }
}

fn t(lo: usize, hi: usize, l: f32) -> Option<Tap> {
    Some(Tap {
        lo,
        hi,
        l,
        h: 1.0 - l,
    })
}

#[test]
fn tap_interpolates_clamps_to_the_border_and_drops_far_outside() {
    assert_eq!(tap(2.25, 4), t(2, 3, 0.25));
    assert_eq!(tap(-0.5, 4), t(0, 1, 0.0)); // within one pixel before: clamped to 0
    assert_eq!(tap(3.5, 4), t(3, 3, 0.0)); // past the last pixel centre: the last pixel
    assert_eq!(tap(4.0, 4), t(3, 3, 0.0)); // exactly one pixel past: still sampled
    assert_eq!(tap(4.01, 4), None);
    assert_eq!(tap(-1.01, 4), None);
    assert_eq!(tap(f32::NAN, 4), None);
    assert_eq!(tap(0.5, 0), None); // an empty axis
}

#[test]
fn sampling_is_one_grid_of_bin_centres_per_axis() {
    // A 4x4 RoI, 2x2 bins of 2 px, 2x2 samples per bin: centres at 0.5, 1.5, 2.5, 3.5.
    let s = sampling(0, [0.0, 0.0, 0.0, 4.0, 4.0], dims(1, 4, 4), params(2, 2)).unwrap();
    let expected = vec![t(0, 1, 0.5), t(1, 2, 0.5), t(2, 3, 0.5), t(3, 3, 0.0)];
    assert_eq!((s.grid_h, s.grid_w, s.count), (2, 2, 4.0));
    assert_eq!(s.ys, expected);
    assert_eq!((s.cols.start, s.cols.len), (Some(0), 4)); // columns 0..=3: taps unshifted
    assert_eq!(s.cols.taps, expected);
    let msg = sampling(3, [2.0, 0.0, 0.0, 4.0, 4.0], dims(2, 4, 4), params(2, 2))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("row 3") && msg.contains("batch index 2"),
        "{msg}"
    );
}

#[test]
fn forward_pools_each_row_from_its_level_and_leaves_unassigned_rows_zero() {
    // Level 0: one 4x4 plane holding x + 4y. Level 1: a 2x2 plane of 7s.
    let plane: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let sevens = vec![7f32; 4];
    let levels = [
        Level {
            data: &plane,
            dims: dims(1, 4, 4),
            params: params(1, 2),
        },
        Level {
            data: &sevens,
            dims: dims(1, 2, 2),
            params: params(1, 2),
        },
    ];
    let roi = |level, x2: f32| Roi {
        roi: [0.0, 0.0, 0.0, x2, x2],
        level,
    };
    let rois = [
        roi(Some(0), 4.0),
        roi(None, 4.0),
        roi(Some(1), 2.0),
        roi(Some(0), 3.0),
    ];
    let out = forward(&levels, &rois).unwrap();
    // Row 0: samples at 1 and 3 on each axis; x + 4y is linear and x = 3 is the last pixel
    // exactly, so the mean is 2 + 4 * 2 = 10. Row 3: samples at 0.75 and 2.25: 1.5 + 4 * 1.5.
    assert_eq!(out, vec![10.0, 0.0, 7.0, 7.5]);
}

#[test]
fn backward_scatters_weights_into_the_plane_of_the_rows_image() {
    // Two images of one 4x4 channel; the RoI reads image 1 at samples (1, 1), (1, 3), (3, 1),
    // (3, 3), each a whole pixel (weight 1), averaged: 1/4 each, times the gradient 2.
    let rois = [Roi {
        roi: [1.0, 0.0, 0.0, 4.0, 4.0],
        level: Some(0),
    }];
    let g = backward(&[2.0], &rois, 0, dims(2, 4, 4), params(1, 2)).unwrap();
    let mut expected = vec![0f32; 32];
    for (y, x) in [(1, 1), (1, 3), (3, 1), (3, 3)] {
        expected[16 + 4 * y + x] = 0.5;
    }
    assert_eq!(g, expected);
    // A half-pixel sample spreads over four pixels: the RoI 0..3 with one sample at 1.5.
    let rois = [Roi {
        roi: [0.0, 0.0, 0.0, 3.0, 3.0],
        level: Some(0),
    }];
    let g = backward(&[1.0], &rois, 0, dims(1, 4, 4), params(1, 1)).unwrap();
    let mut expected = vec![0f32; 16];
    for (y, x) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        expected[4 * y + x] = 0.25;
    }
    assert_eq!(g, expected);
    // Rows of another level add nothing.
    let g = backward(&[1.0], &rois, 1, dims(1, 4, 4), params(1, 1)).unwrap();
    assert_eq!(g, vec![0f32; 16]);
}

#[test]
fn columns_are_one_run_when_dense_and_a_list_when_far_apart() {
    // Dense: a RoI from x = 10 to 14, samples at 10.5, 11.5, 12.5, 13.5: a run from 10.
    let s = sampling(0, [0.0, 10.0, 0.0, 14.0, 4.0], dims(1, 4, 30), params(2, 2)).unwrap();
    assert_eq!((s.cols.start, s.cols.len), (Some(10), 5));
    let shifted = vec![t(0, 1, 0.5), t(1, 2, 0.5), t(2, 3, 0.5), t(3, 4, 0.5)];
    assert_eq!(s.cols.taps, shifted);
    // Far apart: a 200 px RoI, 2 bins of one sample each, at x = 50 and 150 (taps 50|51 and
    // 150|151): a list of 4 columns, each tap pointing into it.
    let s = sampling(
        0,
        [0.0, 0.0, 0.0, 200.0, 4.0],
        dims(1, 4, 300),
        params(2, 1),
    )
    .unwrap();
    assert_eq!((s.cols.start, s.cols.len), (None, 4));
    assert_eq!(s.cols.list, vec![50, 51, 150, 151]);
    assert_eq!(s.cols.taps, vec![t(0, 1, 0.0), t(2, 3, 0.0)]);
    // A RoI whose every column tap is out of range reads no column.
    let s = sampling(
        0,
        [0.0, 400.0, 0.0, 500.0, 4.0],
        dims(1, 4, 300),
        params(2, 1),
    )
    .unwrap();
    assert_eq!((s.cols.len, s.cols.taps.iter().flatten().count()), (0, 0));
}
