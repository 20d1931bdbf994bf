//! Pretrained weights by name (issue 14), end to end through the `detect` binary with no
//! internet: a loopback HTTP server stands in for download.pytorch.org via
//! `DETECT_WEIGHTS_MIRROR`, and a test registry (`DETECT_WEIGHTS_REGISTRY`) pins the hashes of
//! small stand-in files whose keys are exactly torchvision's (checked against the committed key
//! lists of scripts/torchvision_state_dict_keys.py).
mod pretrained_support;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use pretrained_support::*;

const DETECTOR_NAME: &str = "torchvision:fasterrcnn_resnet50_fpn";
const DETECTOR_PATH: &str = "/models/standin_fasterrcnn.safetensors";
const IMAGENET_PATH: &str = "/weights/tiny_imagenet.safetensors";

/// The stand-in files (bytes), the registry pinning them, and the dataset.
struct Setup {
    dir: tempfile::TempDir,
    detector: Vec<u8>,
    imagenet: Vec<u8>,
    registry: String,
    home: String,
    ann: String,
    images: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut standin = random_detector(&standin_detector_config(91), 18);
    // Class scores from the biases alone (zero class weights), so every box is label 18 or 5
    // whatever the random init: with the random weights (candle's unseeded CPU rng) the large
    // random logits sometimes outweighed the +10 bias on every box, and the predict test below
    // failed once in a full run. Softmax of +10 (label 18) and +9.5 (label 5): 0.62 and 0.38.
    let classes = standin_detector_config(91).num_classes;
    let weight = "roi_heads.box_predictor.cls_score.weight".to_string();
    let zeros = standin[&weight].zeros_like().unwrap();
    standin.insert(weight, zeros);
    let mut bias = vec![0f32; classes];
    (bias[18], bias[5]) = (10.0, 9.5);
    standin.insert(
        "roi_heads.box_predictor.cls_score.bias".into(),
        Tensor::new(bias, &Device::Cpu).unwrap(),
    );
    let keys: BTreeSet<String> = standin.keys().cloned().collect();
    assert_eq!(
        keys,
        torchvision_keys("fasterrcnn_resnet50_fpn.txt"),
        "the stand-in has torchvision's fasterrcnn_resnet50_fpn state-dict keys"
    );
    let imagenet = imagenet_standin();
    let keys: BTreeSet<String> = imagenet.keys().cloned().collect();
    assert_eq!(keys, torchvision_keys("resnet_1_1_1_1_imagenet.txt"));
    let detector = safetensors_bytes(&standin, dir.path(), "d.safetensors");
    let imagenet = safetensors_bytes(&imagenet, dir.path(), "i.safetensors");
    let registry = write_registry(dir.path(), &detector, &imagenet);
    let (ann, images) = write_dataset(dir.path());
    Setup {
        home: dir.path().join("home").to_str().unwrap().into(),
        registry: registry.to_str().unwrap().into(),
        ann: ann.to_str().unwrap().into(),
        images: images.to_str().unwrap().into(),
        dir,
        detector,
        imagenet,
    }
}

impl Setup {
    fn files(&self) -> HashMap<String, Vec<u8>> {
        HashMap::from([
            (DETECTOR_PATH.to_string(), self.detector.clone()),
            (IMAGENET_PATH.to_string(), self.imagenet.clone()),
        ])
    }

    fn env<'a>(&'a self, mirror: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("DETECT_HOME", self.home.as_str()),
            ("DETECT_WEIGHTS_REGISTRY", self.registry.as_str()),
            ("DETECT_WEIGHTS_MIRROR", mirror),
        ]
    }

    fn train(&self, mirror: &str, out: &str, iters: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "train",
            "--annotations",
            self.ann.as_str(),
            "--images",
            self.images.as_str(),
            "--iters",
            iters,
            "--batch-size",
            "2",
            "--min-size",
            "64",
            "--max-size",
            "64",
            "--log-period",
            "1",
            "--output",
            out,
        ];
        args.extend_from_slice(extra);
        detect(self.dir.path(), &self.env(mirror), &args)
    }

    fn cached(&self, file: &str) -> std::path::PathBuf {
        Path::new(&self.home).join("weights").join(file)
    }
}

fn final_tensors(run: &Path) -> HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(run.join("model_final.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn fine_tunes_a_coco_detector_on_three_classes_then_reuses_the_cache_offline() {
    let s = setup();
    let server = Server::start(s.files(), Serve::Whole);
    let run = s.dir.path().join("run1");
    let out = s.train(
        &server.base,
        run.to_str().unwrap(),
        "20",
        &["--weights", DETECTOR_NAME],
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("downloading `torchvision:fasterrcnn_resnet50_fpn`"),
        "{err}"
    );
    assert!(err.contains("verified and cached"), "{err}");
    assert!(
        err.contains("the weights have 91 classes, the dataset 4")
            && err.contains(
                "re-initialised roi_heads.box_predictor.cls_score and \
                 roi_heads.box_predictor.bbox_pred"
            ),
        "{err}"
    );
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let cached = s.cached("standin_fasterrcnn.safetensors");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        s.detector,
        "cached byte for byte"
    );

    let losses = losses(&run);
    assert_eq!(losses.len(), 20);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );

    // The model file records the eps of torchvision's COCO weights and the new class count.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["detector"]["backbone"]["body"]["bn_eps"], 0.0);
    assert_eq!(config["detector"]["num_classes"], 4);
    // Frozen layers (conv1, layer1 with 3 trainable stages) are the downloaded values; the new
    // predictor has the dataset's shape.
    let trained = final_tensors(&run);
    let standin = candle_core::safetensors::load(&cached, &Device::Cpu).unwrap();
    for key in [
        "backbone.body.conv1.weight",
        "backbone.body.layer1.0.conv2.weight",
    ] {
        assert_eq!(
            tensor_values(&trained[key]),
            tensor_values(&standin[key]),
            "{key}"
        );
    }
    assert_eq!(
        trained["roi_heads.box_predictor.cls_score.weight"].dims(),
        [4, 32]
    );
    assert_eq!(
        trained["roi_heads.box_predictor.bbox_pred.weight"].dims(),
        [16, 32]
    );
    // Trainable layers moved away from the file.
    let key = "backbone.body.layer4.0.conv1.weight";
    assert_ne!(
        tensor_values(&trained[key]),
        tensor_values(&standin[key]),
        "{key}"
    );

    // Second run: the server is gone; the cache serves (and is verified again).
    drop(server);
    let run2 = s.dir.path().join("run2");
    let out = s.train(
        "http://127.0.0.1:9",
        run2.to_str().unwrap(),
        "2",
        &["--weights", DETECTOR_NAME],
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("from the cache") && !err.contains("downloading"),
        "{err}"
    );
}

#[test]
fn same_class_count_keeps_every_layer() {
    let s = setup();
    let dir = s.dir.path();
    // A `detect train` model of the stand-in architecture with the dataset's 4 outputs, the
    // class bias of label 1 at +10.
    let config = standin_detector_config(4);
    let tensors: std::collections::BTreeMap<_, _> =
        random_detector(&config, 1).into_iter().collect();
    let meta = detect::train::checkpoint::ModelMeta {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        config: serde_json::json!({"detector": config}),
    };
    let file = dir.join("four.safetensors");
    detect::train::checkpoint::save_model(&file, &tensors, &meta).unwrap();
    let run = dir.join("same");
    let out = s.train(
        "http://127.0.0.1:9",
        run.to_str().unwrap(),
        "1",
        &["--weights", file.to_str().unwrap()],
    );
    assert_ok(&out);
    assert!(!stderr(&out).contains("re-initialised"), "{}", stderr(&out));
    // One warm-up step (lr 0.02 x 0.001) moves the bias by far less than 1: it was kept.
    let bias = tensor_values(&final_tensors(&run)["roi_heads.box_predictor.cls_score.bias"]);
    assert!(bias[1] > 9.0, "{bias:?}");
}

#[test]
fn corrupted_or_partial_downloads_are_refused_and_never_cached() {
    let s = setup();
    let mut files = s.files();
    let body = files.get_mut(DETECTOR_PATH).unwrap();
    let middle = body.len() / 2;
    body[middle] ^= 0x01;
    let server = Server::start(files, Serve::Whole);
    let run = s.dir.path().join("bad");
    let out = s.train(
        &server.base,
        run.to_str().unwrap(),
        "1",
        &["--weights", DETECTOR_NAME],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("SHA-256 mismatch") && err.contains("nothing was cached"),
        "{err}"
    );
    let cache = Path::new(&s.home).join("weights");
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing (not even a temporary) stays in the cache: {left:?}"
    );
    drop(server);

    let server = Server::start(s.files(), Serve::Truncated);
    let out = s.train(
        &server.base,
        run.to_str().unwrap(),
        "1",
        &["--weights", DETECTOR_NAME],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("nothing was cached"), "{err}");
    assert!(std::fs::read_dir(&cache).unwrap().next().is_none());
}

#[test]
fn offline_error_names_the_url_and_where_to_put_the_file() {
    let s = setup();
    // Nothing listens on port 9 (discard) of the loopback interface here.
    let out = s.train(
        "http://127.0.0.1:9",
        "run",
        "1",
        &["--weights", DETECTOR_NAME],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("https://download.pytorch.org/models/standin_fasterrcnn.safetensors"),
        "{err}"
    );
    let expected = s.cached("standin_fasterrcnn.safetensors");
    assert!(
        err.contains(&format!("put it at {}", expected.display())),
        "{err}"
    );
}

#[test]
fn imagenet_backbone_weights_are_the_default_for_annotation_files() {
    let s = setup();
    let server = Server::start(s.files(), Serve::Whole);
    let run = s.dir.path().join("imagenet");
    let backbone = detect::model::config::SHAPES_BACKBONE;
    let out = s.train(
        &server.base,
        run.to_str().unwrap(),
        "3",
        &["--backbone", backbone],
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("downloading `test:tiny_imagenet`") && err.contains("verified"),
        "{err}"
    );
    let trained = final_tensors(&run);
    let file = candle_core::safetensors::load(s.cached("tiny_imagenet.safetensors"), &Device::Cpu)
        .unwrap();
    // conv1 is frozen (3 trainable stages): it is the file's.
    assert_eq!(
        tensor_values(&trained["backbone.body.conv1.weight"]),
        tensor_values(&file["conv1.weight"])
    );
    assert!(losses(&run).iter().all(|l| l.is_finite()));

    // `--backbone-weights imagenet` said explicitly: the same, now from the cache.
    let run2 = s.dir.path().join("imagenet2");
    let out = s.train(
        "http://127.0.0.1:9",
        run2.to_str().unwrap(),
        "1",
        &["--backbone", backbone, "--backbone-weights", "imagenet"],
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("from the cache"), "{}", stderr(&out));

    // `none` starts from random weights and downloads nothing; all 5 stages train.
    let run3 = s.dir.path().join("random");
    let out = s.train(
        "http://127.0.0.1:9",
        run3.to_str().unwrap(),
        "1",
        &["--backbone", backbone, "--backbone-weights", "none"],
    );
    assert_ok(&out);
    let config = std::fs::read_to_string(run3.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["detector"]["backbone"]["trainable_layers"], 5);
}

#[test]
fn trainable_backbone_layers_is_recorded_and_bounded() {
    let s = setup();
    let server = Server::start(s.files(), Serve::Whole);
    let run = s.dir.path().join("tbl");
    let backbone = detect::model::config::SHAPES_BACKBONE;
    let out = s.train(
        &server.base,
        run.to_str().unwrap(),
        "1",
        &["--backbone", backbone, "--trainable-backbone-layers", "0"],
    );
    assert_ok(&out);
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["detector"]["backbone"]["trainable_layers"], 0);
    // Nothing in the body trains: layer4 is still the file's after a step.
    let trained = final_tensors(&run);
    let file = candle_core::safetensors::load(s.cached("tiny_imagenet.safetensors"), &Device::Cpu)
        .unwrap();
    assert_eq!(
        tensor_values(&trained["backbone.body.layer4.0.conv1.weight"]),
        tensor_values(&file["layer4.0.conv1.weight"])
    );
    let out = s.train(
        &server.base,
        "x",
        "1",
        &["--trainable-backbone-layers", "6"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("0..=5"), "{}", stderr(&out));
}

/// The 80 COCO categories, listed in reverse id order (the file's order must not matter).
fn coco_categories_file(dir: &Path) -> String {
    let list: Vec<serde_json::Value> = datasets::coco::COCO_CATEGORIES
        .iter()
        .rev()
        .map(|&(id, name)| serde_json::json!({"id": id, "name": name, "supercategory": "x"}))
        .collect();
    let path = dir.join("categories.json");
    std::fs::write(&path, serde_json::to_string(&list).unwrap()).unwrap();
    path.to_str().unwrap().into()
}

#[test]
fn sparse_id_weights_need_categories_for_predict_and_eval() {
    let s = setup();
    let dir = s.dir.path();
    let backbone = detect::model::config::SHAPES_BACKBONE;
    // torchvision layout, 80 categories + background, every box pushed to label 12: with
    // COCO's sparse ids that is id 13 "stop sign" (label 12 read as id 12 would be wrong:
    // COCO has no id 12).
    let mut config = detect::model::config::DetectorConfig::shapes(81);
    config.transform.min_size = vec![64];
    config.transform.max_size = 64;
    let weights = dir.join("coco80.safetensors");
    candle_core::safetensors::save(&random_detector(&config, 12), &weights).unwrap();
    let weights = weights.to_str().unwrap();
    let categories = coco_categories_file(dir);
    let image = Path::new(&s.images).join("0.png");
    let image = image.to_str().unwrap();
    let base = [
        "predict",
        image,
        "--weights",
        weights,
        "--backbone",
        backbone,
    ];

    let out = detect(dir, &[], &[&base[..], &["--json", "a.json"][..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--categories FILE"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("a.json").exists());

    let out = detect(
        dir,
        &[],
        &[
            &base[..],
            &[
                "--json",
                "a.json",
                "--categories",
                categories.as_str(),
                "--score-threshold",
                "0.1",
            ][..],
        ]
        .concat(),
    );
    assert_ok(&out);
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("a.json")).unwrap()).unwrap();
    assert!(!results.is_empty());
    assert!(
        results
            .iter()
            .all(|r| r["category_id"] == 13 && r["category_name"] == "stop sign"),
        "{results:?}"
    );

    // eval: the dataset's images labelled with COCO's categories.
    let mut coco: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s.ann).unwrap()).unwrap();
    coco["categories"] =
        serde_json::from_str(&std::fs::read_to_string(&categories).unwrap()).unwrap();
    for a in coco["annotations"].as_array_mut().unwrap() {
        a["category_id"] = 13.into();
    }
    let ann = dir.join("val80.json");
    std::fs::write(&ann, coco.to_string()).unwrap();
    let eval = [
        "eval",
        "--weights",
        weights,
        "--backbone",
        backbone,
        "--annotations",
        ann.to_str().unwrap(),
        "--images",
        s.images.as_str(),
        "--output-json",
        "m.json",
    ];
    let out = detect(dir, &[], &eval);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--categories FILE"),
        "{}",
        stderr(&out)
    );
    let out = detect(
        dir,
        &[],
        &[&eval[..], &["--categories", categories.as_str()][..]].concat(),
    );
    assert_ok(&out);
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("m.results.json")).unwrap()).unwrap();
    assert!(!results.is_empty());
    assert!(
        results.iter().all(|r| r["category_id"] == 13),
        "{results:?}"
    );
}

#[test]
fn a_registry_detector_carries_its_classes() {
    let s = setup();
    let server = Server::start(s.files(), Serve::Whole);
    let dir = s.dir.path();
    let image = Path::new(&s.images).join("1.png");
    // The stand-in's class bias is on label 18: the registry's classes say COCO id 18, "dog".
    let out = detect(
        dir,
        &s.env(&server.base),
        &[
            "predict",
            image.to_str().unwrap(),
            "--weights",
            DETECTOR_NAME,
            "--json",
            "d.json",
            "--score-threshold",
            "0.1",
        ],
    );
    assert_ok(&out);
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("d.json")).unwrap()).unwrap();
    assert!(!results.is_empty());
    // The stand-in's class scores are its biases (see `setup`): every box is label 18 or 5.
    // Labels are read through the registry's classes (label = COCO id, names from the entry,
    // which names 1 "person" and 18 "dog"): an id the entry does not name reads "class <id>".
    for id in [18, 5] {
        assert!(
            results.iter().any(|r| r["category_id"] == id),
            "no label {id}: {results:?}"
        );
    }
    for r in &results {
        let id = r["category_id"].as_u64().unwrap();
        let expected = match id {
            1 => "person".to_string(),
            18 => "dog".to_string(),
            _ => format!("class {id}"),
        };
        assert_eq!(r["category_name"], expected.as_str(), "{r}");
    }
}

#[test]
fn registry_names_are_never_files_and_unbuilt_architectures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let env = [("DETECT_HOME", home.to_str().unwrap())];
    // A file literally named like a registry name is not read.
    std::fs::write(dir.path().join("torchvision:nope"), b"not weights").unwrap();
    let out = detect(
        dir.path(),
        &env,
        &["predict", "x.png", "--weights", "torchvision:nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not in the weights registry"),
        "{}",
        stderr(&out)
    );

    // torchvision's v2 detector (built-in registry): refused naming its layers, nothing fetched.
    let out = detect(
        dir.path(),
        &env,
        &[
            "predict",
            "x.png",
            "--weights",
            "torchvision:fasterrcnn_resnet50_fpn_v2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("rpn.head.conv.1") && err.contains("roi_heads.box_head.0"),
        "{err}"
    );
    assert!(!home.exists(), "nothing was downloaded");

    // A backbone without published ImageNet weights: the default is an error suggesting none.
    let out = detect(
        dir.path(),
        &env,
        &[
            "train",
            "--annotations",
            "a.json",
            "--images",
            ".",
            "--backbone",
            "resnext50_8x14d",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--backbone-weights none"),
        "{}",
        stderr(&out)
    );
}
