//! Test pieces for pretrained weights: a loopback HTTP server, small stand-in weight files in
//! torchvision's key layout, a test registry pinning their hashes, and a 3-class dataset.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use backbones::{BackboneConfig, BlockForm, ResNextConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use datasets::transforms::TransformConfig;
use detect::model::config::{DetectorConfig, SHAPES_BACKBONE};
use detect::model::faster_rcnn::FasterRcnn;
use heads::roi_heads::RoiHeadsConfig;
use heads::rpn::RpnConfig;
use sha2::{Digest, Sha256};

pub const KEYS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/torchvision_keys"
);

/// How the server answers a file request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    Whole,
    /// Announces the full length, sends half, closes.
    Truncated,
}

/// A loopback HTTP/1.1 server answering `GET /path` from a map; stops when dropped.
pub struct Server {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(files: HashMap<String, Vec<u8>>, serve: Serve) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (hits, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    h.fetch_add(1, Ordering::SeqCst);
                    let _ = answer(stream, &files, serve);
                }
            }
        });
        Self {
            base,
            hits,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(
    stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    serve: Serve,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut out = stream;
    match files.get(&path) {
        Some(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            let sent = if serve == Serve::Truncated {
                &body[..body.len() / 2]
            } else {
                body
            };
            out.write_all(sent)?;
        }
        None => write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    out.flush()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// torchvision's `fasterrcnn_resnet50_fpn` layout (ResNet-50 body: [3, 4, 6, 3] bottlenecks,
/// FPN, RPN, TwoMLPHead, FastRCNNPredictor) at a width small enough to train on 2 cores.
pub fn standin_detector_config(num_classes: usize) -> DetectorConfig {
    DetectorConfig {
        backbone_name: "resnet50".into(),
        backbone: BackboneConfig {
            body: ResNextConfig {
                layers: [3, 4, 6, 3],
                groups: 1,
                width_per_group: 64,
                stem_channels: 8,
                planes: [8, 8, 16, 16],
                block_form: BlockForm::Grouped,
                bn_eps: 0.0,
            },
            fpn_channels: 16,
            trainable_layers: 3,
        },
        rpn: RpnConfig {
            pre_nms_top_n_train: 300,
            post_nms_top_n_train: 100,
            pre_nms_top_n_test: 300,
            post_nms_top_n_test: 100,
            ..RpnConfig::default()
        },
        roi_heads: RoiHeadsConfig {
            representation_size: 32,
            batch_size_per_image: 64,
            ..RoiHeadsConfig::default()
        },
        transform: TransformConfig {
            min_size: vec![64],
            max_size: 64,
            ..TransformConfig::default()
        },
        num_classes,
    }
}

/// A randomly initialised model's state dict under torchvision's names, with the class bias
/// of `label` pushed to +10 (every box then scores ~1 for that class).
pub fn random_detector(config: &DetectorConfig, label: usize) -> HashMap<String, Tensor> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    FasterRcnn::new(config, vb).unwrap();
    let mut tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let mut bias = vec![0f32; config.num_classes];
    bias[label] = 10.0;
    tensors.insert(
        "roi_heads.box_predictor.cls_score.bias".into(),
        Tensor::new(bias, &Device::Cpu).unwrap(),
    );
    tensors
}

/// ImageNet classification weights of the `shapes` backbone ([1, 1, 1, 1] blocks) under
/// torchvision's ResNet names: the detector body's tensors without the `backbone.body.`
/// prefix, BatchNorm's `num_batches_tracked` counters, and a 1000-way `fc`.
pub fn imagenet_standin() -> HashMap<String, Tensor> {
    let detector = random_detector(&DetectorConfig::shapes(2), 1);
    let mut tensors: HashMap<String, Tensor> = detector
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix("backbone.body.").map(|k| (k.to_string(), t)))
        .collect();
    let bns: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".running_var").map(String::from))
        .collect();
    for bn in bns {
        let count = Tensor::new(&[1000i64], &Device::Cpu)
            .unwrap()
            .squeeze(0)
            .unwrap();
        tensors.insert(format!("{bn}.num_batches_tracked"), count);
    }
    let width = DetectorConfig::shapes(2).backbone.body.out_channels(3);
    tensors.insert(
        "fc.weight".into(),
        Tensor::zeros((1000, width), DType::F32, &Device::Cpu).unwrap(),
    );
    tensors.insert(
        "fc.bias".into(),
        Tensor::zeros(1000, DType::F32, &Device::Cpu).unwrap(),
    );
    tensors
}

/// The committed key list `name` (scripts/torchvision_state_dict_keys.py).
pub fn torchvision_keys(name: &str) -> BTreeSet<String> {
    std::fs::read_to_string(Path::new(KEYS).join(name))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>, dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    candle_core::safetensors::save(tensors, &path).unwrap();
    std::fs::read(path).unwrap()
}

/// A test registry: the stand-in detector under torchvision's name and the stand-in ImageNet
/// weights as the `shapes` backbone's `imagenet`, each pinned to its hash.
pub fn write_registry(dir: &Path, detector: &[u8], imagenet: &[u8]) -> PathBuf {
    let mut defaults = serde_json::Map::new();
    defaults.insert(SHAPES_BACKBONE.into(), "test:tiny_imagenet".into());
    let prefix = sha256_hex(imagenet)[..8].to_string();
    let registry = serde_json::json!({
        "imagenet": defaults,
        "weights": {
            "torchvision:fasterrcnn_resnet50_fpn": {
                "url": "https://download.pytorch.org/models/standin_fasterrcnn.safetensors",
                "sha256": sha256_hex(detector),
                "kind": "detector",
                "architecture": "resnet50",
                "detector": standin_detector_config(91),
                "frozen_bn_eps": 0.0,
                "source": "test stand-in in torchvision's fasterrcnn_resnet50_fpn key layout",
                "categories": {"labels": "identity", "categories": [
                    {"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
            },
            "test:tiny_imagenet": {
                "url": "https://example.org/weights/tiny_imagenet.safetensors",
                "sha256_prefix": prefix,
                "kind": "backbone",
                "architecture": SHAPES_BACKBONE,
                "frozen_bn_eps": 1e-5,
                "source": "test stand-in in torchvision's ResNet key layout"
            }
        }
    });
    let path = dir.join("registry.json");
    std::fs::write(&path, serde_json::to_string_pretty(&registry).unwrap()).unwrap();
    path
}

/// 4 images of 64x64 with one box each, categories with sparse ids 2, 5 and 9.
pub fn write_dataset(dir: &Path) -> (PathBuf, PathBuf) {
    let images = dir.join("imgs");
    std::fs::create_dir_all(&images).unwrap();
    let mut image_list = Vec::new();
    let mut annotations = Vec::new();
    let category_ids = [2, 5, 9, 2];
    for i in 0..4u32 {
        let (x0, y0) = (8 + 4 * i, 10 + 3 * i);
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            let inside = (x0..x0 + 30).contains(&x) && (y0..y0 + 26).contains(&y);
            if inside {
                image::Rgb([200, 40 * i as u8, 30])
            } else {
                image::Rgb([20, 90, 140])
            }
        });
        let name = format!("{i}.png");
        img.save(images.join(&name)).unwrap();
        image_list
            .push(serde_json::json!({"id": i + 1, "file_name": name, "width": 64, "height": 64}));
        annotations.push(serde_json::json!({
            "id": i + 1, "image_id": i + 1, "category_id": category_ids[i as usize],
            "bbox": [x0, y0, 30, 26], "area": 780, "iscrowd": 0
        }));
    }
    let coco = serde_json::json!({
        "images": image_list,
        "annotations": annotations,
        "categories": [{"id": 2, "name": "a"}, {"id": 5, "name": "b"}, {"id": 9, "name": "c"}],
    });
    let ann = dir.join("train.json");
    std::fs::write(&ann, serde_json::to_string(&coco).unwrap()).unwrap();
    (ann, images)
}

/// `detect ARGS` in `cwd` with the given environment (DETECT_* cleared first).
pub fn detect(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_detect"));
    cmd.args(args).current_dir(cwd).env_remove("RUST_BACKTRACE");
    for var in [
        "DETECT_HOME",
        "DETECT_WEIGHTS_REGISTRY",
        "DETECT_WEIGHTS_MIRROR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "detect failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// The `total_loss` of every logged iteration.
pub fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "train")
        .map(|v| v["total_loss"].as_f64().unwrap())
        .collect()
}

pub fn tensor_values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}
