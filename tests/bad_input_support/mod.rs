//! Shared by the bad-input tests: running `detect` with a deadline (a hang fails the test
//! instead of hanging CI), a tiny COCO-format dataset of generated PNGs, and a tiny model file.
#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use detect::model::config::DetectorConfig;
use detect::model::faster_rcnn::FasterRcnn;
use detect::train::checkpoint::{save_model, ModelMeta};

/// Runs `detect args...` in `cwd`; kills it and fails the test if it runs past `deadline`.
pub fn detect_with_deadline(args: &[&str], cwd: &Path, deadline: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the detect binary starts");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
            panic!(
                "`detect {}` still running after {deadline:?} (a hang): {err}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A 64x64 PNG: grey background, a white square at (16..48, 16..48).
pub fn write_png(path: &Path) {
    let image = image::RgbImage::from_fn(64, 64, |x, y| {
        if (16..48).contains(&x) && (16..48).contains(&y) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([90, 90, 90])
        }
    });
    image.save(path).unwrap();
}

/// `dir/annotations.json` + `dir/images/img<i>.png` for `n` images, one box each (category 1,
/// "square"). Returns (annotations, images folder).
pub fn write_coco(dir: &Path, n: usize) -> (String, String) {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut records = Vec::new();
    let mut annotations = Vec::new();
    for i in 0..n {
        let name = format!("img{i}.png");
        write_png(&images.join(&name));
        records
            .push(serde_json::json!({"id": i + 1, "file_name": name, "width": 64, "height": 64}));
        annotations.push(serde_json::json!({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [16, 16, 32, 32],
            "area": 1024, "iscrowd": 0
        }));
    }
    let json = serde_json::json!({
        "images": records,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "square"}],
    });
    let file = dir.join("annotations.json");
    std::fs::write(&file, json.to_string()).unwrap();
    (
        file.to_str().unwrap().to_owned(),
        images.to_str().unwrap().to_owned(),
    )
}

/// The options of a tiny training run on a [`write_coco`] dataset (the small shapes backbone,
/// 64 px images, no augmentation of the size).
pub fn tiny_coco_train_args<'a>(
    annotations: &'a str,
    images: &'a str,
    out: &'a str,
) -> Vec<&'a str> {
    vec![
        "train",
        "--annotations",
        annotations,
        "--images",
        images,
        "--backbone",
        detect::model::config::SHAPES_BACKBONE,
        // The tiny test backbone has no published ImageNet weights (the default for
        // --annotations): start from random ones.
        "--backbone-weights",
        "none",
        "--min-size",
        "64",
        "--max-size",
        "64",
        "--output",
        out,
    ]
}

/// A randomly initialised `shapes`-architecture model file of one category ("square") whose
/// class bias makes every surviving box a square.
pub fn write_model(path: &Path) {
    let config = DetectorConfig::shapes(2);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    FasterRcnn::new(&config, vb).unwrap();
    let mut tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    tensors.insert(
        "roi_heads.box_predictor.cls_score.bias".into(),
        Tensor::new(vec![0f32, 10.0], &Device::Cpu).unwrap(),
    );
    let meta = ModelMeta {
        class_names: vec!["square".into()],
        config: serde_json::json!({
            "detector": config,
            "categories": {"categories": [{"id": 1, "name": "square"}]},
        }),
    };
    let tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    save_model(path, &tensors, &meta).unwrap();
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
