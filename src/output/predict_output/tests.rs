use super::*;
use candle_core::{DType, Tensor};

#[test]
fn detections_from_model_tensors() {
    let dev = candle_core::Device::Cpu;
    let boxes = Tensor::new(&[[1f32, 2., 3., 4.], [5., 6., 7., 8.]], &dev).unwrap();
    let scores = Tensor::new(&[0.9f32, 0.1], &dev).unwrap();
    let labels = Tensor::new(&[3u32, 1], &dev).unwrap();
    let detections = Detection::from_tensors(&boxes, &scores, &labels).unwrap();
    assert_eq!(
        detections[1],
        Detection {
            box_xyxy: [5., 6., 7., 8.],
            score: 0.1,
            label: 1
        }
    );
    let empty = Tensor::zeros((0, 4), DType::F32, &dev).unwrap();
    let none = Tensor::zeros(0, DType::F32, &dev).unwrap();
    assert!(Detection::from_tensors(&empty, &none, &none)
        .unwrap()
        .is_empty());
    assert!(Detection::from_tensors(&boxes, &none, &labels).is_err());
}

#[test]
fn repeated_stems_get_distinct_drawn_files() {
    let images = [
        PathBuf::from("a/x.jpg"),
        PathBuf::from("b/x.jpg"),
        PathBuf::from("y.png"),
    ];
    let paths = drawn_image_paths(&images, Path::new("out"));
    assert_eq!(
        paths,
        [
            Path::new("out/x.png"),
            Path::new("out/x-2.png"),
            Path::new("out/y.png")
        ]
    );
}

#[test]
fn writes_drawn_images_and_thresholded_results() {
    let dir = tempfile::tempdir().unwrap();
    let images = [
        PathBuf::from("in/000000000042.jpg"),
        PathBuf::from("in/cat.jpg"),
    ];
    let json = dir.path().join("dets.json");
    let out = dir.path().join("drawn");
    let mut output = PredictOutput::new(&images, Some(&out), Some(&json), 0.5).unwrap();
    let labels = CategoryMap::coco_torchvision();
    let image = RgbImage::from_pixel(100, 80, image::Rgb([128, 128, 128]));
    let detections = [
        Detection {
            box_xyxy: [10.0, 30.0, 60.0, 70.0],
            score: 0.9,
            label: 17,
        },
        Detection {
            box_xyxy: [5.0, 5.0, 9.0, 9.0],
            score: 0.2,
            label: 1,
        },
    ];
    output.add_image(0, &image, &detections, &labels).unwrap();
    output.add_image(1, &image, &[], &labels).unwrap();
    assert!(output.add_image(2, &image, &[], &labels).is_err());
    output.finish().unwrap();

    let drawn = image::open(out.join("000000000042.png")).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), (100, 80));
    assert_eq!(
        *drawn.get_pixel(10, 50),
        crate::output::draw::class_colour(17),
        "box drawn"
    );
    assert_eq!(
        image::open(out.join("cat.png")).unwrap().to_rgb8(),
        image,
        "nothing drawn"
    );
    let results: Vec<CocoResult> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(results.len(), 1, "the 0.2 detection is below the threshold");
    assert_eq!((results[0].image_id, results[0].category_id), (42, 17));
    assert_eq!(results[0].bbox, [10.0, 30.0, 50.0, 40.0]);
}
