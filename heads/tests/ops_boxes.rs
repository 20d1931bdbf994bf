//! Box ops vs torchvision.ops.boxes (fixtures from `tests/fixtures/ops/gen.py`).

mod ops_support;

use candle_core::{DType, Device, Tensor};
use heads::ops::{box_area, box_iou, clip_boxes_to_image, remove_small_boxes};
use ops_support::{devices, fixture, floats, ints, max_abs_diff, tensor, to_f32, to_u32};

/// The same f32 operations in the same order as torchvision: equal up to rounding of the
/// last bit (the IoU division), hence 1e-6.
const TOL: f32 = 1e-6;

#[test]
fn box_ops_match_torchvision() {
    let f = fixture("boxes");
    for device in devices() {
        let a = tensor(&f["a"], &device);
        let b = tensor(&f["b"], &device);
        let area = to_f32(&box_area(&a).unwrap());
        assert!(
            max_abs_diff(&area, &floats(&f["area_a"]["data"])) <= TOL,
            "{device:?} box_area"
        );
        let iou = box_iou(&a, &b).unwrap();
        assert_eq!(iou.dims(), &[40, 25]);
        assert!(
            max_abs_diff(&to_f32(&iou), &floats(&f["iou"]["data"])) <= TOL,
            "{device:?} box_iou"
        );
        let size = ints(&f["clip_size"]);
        let clip = clip_boxes_to_image(&a, (size[0] as usize, size[1] as usize)).unwrap();
        assert_eq!(
            to_f32(&clip),
            floats(&f["clip"]["data"]),
            "{device:?} clip_boxes_to_image"
        );
        let keep = remove_small_boxes(&a, f["min_size"].as_f64().unwrap()).unwrap();
        let expected: Vec<u32> = ints(&f["small_keep"])
            .into_iter()
            .map(|i| i as u32)
            .collect();
        assert_eq!(to_u32(&keep), expected, "{device:?} remove_small_boxes");
    }
}

#[test]
fn box_ops_accept_empty_inputs() {
    for device in devices() {
        let empty = Tensor::zeros((0, 4), DType::F32, &device).unwrap();
        let some = Tensor::new(&[[0f32, 0., 2., 2.]], &device).unwrap();
        assert_eq!(box_area(&empty).unwrap().dims(), &[0]);
        assert_eq!(box_iou(&empty, &some).unwrap().dims(), &[0, 1]);
        assert_eq!(box_iou(&some, &empty).unwrap().dims(), &[1, 0]);
        assert_eq!(clip_boxes_to_image(&empty, (5, 5)).unwrap().dims(), &[0, 4]);
        assert_eq!(remove_small_boxes(&empty, 1.0).unwrap().dims(), &[0]);
    }
}

#[test]
fn box_iou_rejects_wrong_shape_naming_op_and_argument() {
    let a = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::zeros((3, 5), DType::F32, &Device::Cpu).unwrap();
    let msg = box_iou(&a, &b).unwrap_err().to_string();
    assert!(
        msg.contains("box_iou")
            && msg.contains("`b`")
            && msg.contains("[N, 4]")
            && msg.contains("[3, 5]"),
        "{msg}"
    );
    let ints = Tensor::zeros((3, 4), DType::U32, &Device::Cpu).unwrap();
    let msg = box_area(&ints).unwrap_err().to_string();
    assert!(
        msg.contains("box_area") && msg.contains("dtype") && msg.contains("U32"),
        "{msg}"
    );
}
