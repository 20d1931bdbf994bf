//! Overfitting a few real photographs (`shared/data/coco128`) with a small random-init
//! ResNeXt-FPN: shared by `examples/overfit_coco128.rs` (the long run, COCO AP before and after)
//! and `tests/overfit_short.rs` (a few dozen iterations, the loss must fall).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use candle_core::Device;
use datasets::coco::CategoryMap;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::eval::CocoMetrics;
use datasets::loader::{DataLoader, LoaderConfig, Mode};
use datasets::shapes::Split;
use detect::model::config::DetectorConfig;
use detect::model::evaluate::{evaluate, EvalPass};
use detect::model::faster_rcnn::FasterRcnn;
use detect::train::solver::Sgd;
use detect::weights::params::Params;
use heads::anchors::AnchorGeneratorConfig;
use heads::roi_heads::Target;

/// `shared/data/coco128`, or `None` (printed) when absent; absent under `CI=true` is a failure.
pub fn coco128() -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/coco128"
    ));
    if dir.join("annotations.json").is_file() {
        return Some(dir.to_path_buf());
    }
    let message = format!("coco128 is missing at {}", dir.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    println!("{message}: skipped");
    None
}

/// Writes `out/annotations.json`: the first `n` coco128 images (by id) that have a non-crowd
/// box, their annotations, and only the categories they use (so the model has the subset's
/// classes). Returns the dataset spec over coco128's image folder.
pub fn write_subset(coco128: &Path, n: usize, out: &Path) -> anyhow::Result<DatasetSpec> {
    let path = coco128.join("annotations.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut coco: serde_json::Value = serde_json::from_str(&text)?;
    let annotations = coco["annotations"]
        .as_array()
        .context("annotations")?
        .clone();
    let has_box = |id: &serde_json::Value| {
        annotations
            .iter()
            .any(|a| &a["image_id"] == id && a["iscrowd"] == 0)
    };
    let images: Vec<serde_json::Value> = coco["images"]
        .as_array()
        .context("images")?
        .iter()
        .filter(|im| has_box(&im["id"]))
        .take(n)
        .cloned()
        .collect();
    let ids: Vec<&serde_json::Value> = images.iter().map(|im| &im["id"]).collect();
    let kept: Vec<serde_json::Value> = annotations
        .into_iter()
        .filter(|a| ids.contains(&&a["image_id"]))
        .collect();
    let used: Vec<&serde_json::Value> = kept.iter().map(|a| &a["category_id"]).collect();
    let categories: Vec<serde_json::Value> = coco["categories"]
        .as_array()
        .context("categories")?
        .iter()
        .filter(|c| used.contains(&&c["id"]))
        .cloned()
        .collect();
    coco["images"] = serde_json::Value::Array(images);
    coco["annotations"] = serde_json::Value::Array(kept);
    coco["categories"] = serde_json::Value::Array(categories);
    std::fs::create_dir_all(out)?;
    let annotations = out.join("annotations.json");
    std::fs::write(&annotations, serde_json::to_vec(&coco)?)?;
    Ok(DatasetSpec::Files {
        annotations,
        images: coco128.join("images"),
    })
}

/// `DetectorConfig::shapes` (a small ResNeXt-FPN, every stage trained) for photographs resized
/// to `min_size` / `max_size`: anchors 16..256 px, which covers COCO objects at that scale.
pub fn small_config(num_classes: usize, min_size: usize, max_size: usize) -> DetectorConfig {
    let mut config = DetectorConfig::shapes(num_classes);
    config.backbone_name = "small ResNeXt-FPN (DetectorConfig::shapes)".into();
    config.rpn.anchors = AnchorGeneratorConfig {
        sizes: vec![vec![16.], vec![32.], vec![64.], vec![128.], vec![256.]],
        aspect_ratios: vec![vec![0.5, 1.0, 2.0]; 5],
    };
    config.transform.min_size = vec![min_size];
    config.transform.max_size = max_size;
    config
}

/// A model, its optimizer and the data of an overfitting run.
pub struct Overfit {
    pub model: FasterRcnn,
    pub params: Params,
    pub sgd: Sgd,
    pub dataset: Arc<Dataset>,
    pub map: CategoryMap,
    pub loader: DataLoader,
    pub config: DetectorConfig,
}

impl Overfit {
    /// Random init (seeded), SGD momentum 0.9 / weight decay 1e-4, no flips (the same pixels
    /// every epoch, which is what overfitting wants).
    pub fn new(
        spec: &DatasetSpec,
        batch_size: usize,
        sizes: (usize, usize),
        seed: u64,
    ) -> anyhow::Result<Self> {
        let dataset = Arc::new(Dataset::open(spec, Split::Train)?);
        let map = dataset.coco.category_map();
        let config = small_config(map.num_categories() + 1, sizes.0, sizes.1);
        let (model, params) =
            detect::train::step::build_model(&config, Default::default(), seed, &Device::Cpu)?;
        let sgd = Sgd::new(params.trainable(), 0.9, 1e-4)?;
        let loader = DataLoader::new(
            dataset.clone(),
            &map,
            config.transform.clone(),
            LoaderConfig {
                batch_size,
                seed,
                aspect_ratio_group_factor: None,
                flip_probability: 0.0,
                ..LoaderConfig::default()
            },
            Mode::Train,
        );
        Ok(Self {
            model,
            params,
            sgd,
            dataset,
            map,
            loader,
            config,
        })
    }

    /// One epoch of steps at learning rate `lr(iteration)`; returns each step's total loss.
    pub fn epoch(
        &mut self,
        epoch: u64,
        first_iteration: u64,
        lr: impl Fn(u64) -> f64,
    ) -> anyhow::Result<Vec<f64>> {
        let mut totals = Vec::new();
        for batch in self.loader.epoch(epoch) {
            let batch = batch?;
            let targets: Vec<Target> = batch
                .targets
                .iter()
                .map(|t| Target {
                    boxes: t.boxes.clone(),
                    labels: t.labels.clone(),
                })
                .collect();
            let iteration = first_iteration + totals.len() as u64;
            let losses =
                self.model
                    .losses(&batch.images, &batch.image_sizes, &targets, iteration, 0)?;
            let total = losses.total()?;
            let value = f64::from(total.to_scalar::<f32>()?);
            anyhow::ensure!(
                value.is_finite(),
                "non-finite loss at iteration {iteration}: {:?}",
                losses.values()?
            );
            self.sgd.step(&total.backward()?, lr(iteration))?;
            totals.push(value);
        }
        Ok(totals)
    }

    /// COCO AP of the model on the same images.
    pub fn evaluate(&self) -> anyhow::Result<CocoMetrics> {
        let map = &self.map;
        let output = evaluate(
            &self.model,
            &EvalPass {
                dataset: self.dataset.clone(),
                dataset_categories: map,
                category_of_label: &|label| map.category_id(label),
                transform: self.config.transform.clone(),
                batch_size: 2,
                skip_bad_images: false,
                device: &Device::Cpu,
                shard: datasets::loader::Shard::WHOLE,
            },
            |_, _| {},
        )?;
        Ok(output.metrics)
    }
}
