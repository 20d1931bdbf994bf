//! `detect eval`: COCO box AP of a results file against COCO annotations (pycocotools'
//! numbers, see `datasets::eval`), printed as pycocotools prints it plus a per-category table,
//! and optionally written as JSON. With `--weights MODEL` and a dataset it first runs the
//! detector over the dataset's validation split (progress bar), writes the detections as a COCO
//! results file and evaluates them with the same evaluator. On Pascal VOC roots it also prints
//! VOC07 11-point and VOC12 area AP@0.5 per class (difficult objects ignored).
use std::path::Path;

use anyhow::{bail, Context};
use datasets::coco::CocoDataset;
use datasets::dataset::DatasetSpec;
use datasets::eval::{CocoEvaluator, Detection, VocEvaluator};
use datasets::formats::Layout;
use datasets::shapes::Split;
use indicatif::{ProgressBar, ProgressStyle};

use crate::atomic::write_atomically;
use crate::cli::EvalArgs;
use crate::commands::{dataset_spec, decode_limits, open_split, parse_device};
use crate::model::evaluate::{evaluate, EvalPass};
use crate::weights::load::load_detector;
use crate::weights::registry::{WeightsKind, WeightsRef};
use crate::weights::resolve::{resolve, ResolvedWeights};

/// Images per forward pass during evaluation.
const EVAL_BATCH: usize = 2;

/// Runs `detect eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(weights) = &args.weights {
        let resolved = resolve(&WeightsRef::parse(weights), WeightsKind::Detector)?;
        return run_model(&args, &resolved)
            .map_err(|e| super::explain_out_of_memory(e, "evaluation", EVAL_BATCH, (None, None)));
    }
    let Some(results) = &args.results else {
        bail!("`detect eval` needs --results RESULTS.json (a COCO results file)\nhint: detect eval --annotations instances_val2017.json --results results.json");
    };
    // A COCO results file needs only the annotations, not the images they describe.
    let (gt, spec) = match args.data.annotations.as_slice() {
        [] => bail!("`detect eval --results` needs --annotations (a COCO .json, VOC root or YOLO data.yaml), the annotations the results refer to"),
        [json] if Layout::of(json) == Some(Layout::Coco) => {
            let gt = CocoDataset::load(json)
                .with_context(|| format!("reading annotations {}", json.display()))?;
            (gt, None)
        }
        _ => {
            let spec = dataset_spec(&args.data)?.context("no dataset")?;
            let gt = open_split(&spec, Split::Val, Default::default())?
                .coco
                .clone();
            (gt, Some(spec))
        }
    };
    let mut evaluator = CocoEvaluator::new(&gt);
    let n = evaluator
        .add_results_file(results)
        .with_context(|| format!("reading results {}", results.display()))?;
    eprintln!(
        "evaluating {n} detections on {} images, {} categories",
        gt.images.len(),
        gt.categories.len()
    );
    let metrics = evaluator.evaluate();
    print!("{}", metrics.summary());
    println!();
    print!("{}", metrics.per_category_table());
    let mut json = metrics.to_json();
    if let Some(spec) = &spec {
        let detections = datasets::eval::load_results(results)?;
        add_voc_metrics(spec, &gt, &detections, &mut json)?;
    }
    if let Some(path) = &args.output_json {
        write_json(path, &json)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    write_atomically(path, |tmp| {
        std::fs::write(tmp, &text).with_context(|| format!("writing metrics to {}", path.display()))
    })
}

/// `detect eval --weights MODEL`: the model over the validation split, then COCO AP.
fn run_model(args: &EvalArgs, resolved: &ResolvedWeights) -> anyhow::Result<()> {
    let weights = resolved.path.as_path();
    let spec = dataset_spec(&args.data)?.context(
        "`detect eval --weights` needs a dataset: --dataset NAME, --annotations FILE.json \
         --images DIR, --annotations VOC_ROOT or --annotations data.yaml",
    )?;
    let limits = decode_limits(args.data.max_image_pixels)?;
    let device = parse_device(&args.device)?;
    args.precision.apply();
    let mut loaded = load_detector(
        resolved,
        args.backbone.as_deref(),
        args.categories.as_deref(),
        &device,
    )?;
    loaded.model.set_autocast(args.precision.autocast());
    let dataset = open_split(&spec, Split::Val, limits)?;
    let dataset_categories = dataset.coco.category_map();
    let labels = &loaded.labels;
    let known: std::collections::HashSet<u64> =
        dataset.coco.categories.iter().map(|c| c.id).collect();
    let category_of_label = |label: u32| {
        let id = labels.category(label as usize).id;
        known.contains(&id).then_some(id)
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} batches, ETA {eta}")
            .expect("valid template"),
    );
    let transform = loaded.model.config().transform.clone();
    let output = evaluate(
        &loaded.model,
        &EvalPass {
            dataset: dataset.clone(),
            dataset_categories: &dataset_categories,
            category_of_label: &category_of_label,
            transform,
            batch_size: EVAL_BATCH,
            skip_bad_images: args.data.skip_bad_images,
            device: &device,
            shard: datasets::loader::Shard::WHOLE,
        },
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    if !output.skipped.is_empty() {
        eprintln!(
            "warning: skipped {} unreadable images:",
            output.skipped.len()
        );
        for m in &output.skipped {
            eprintln!("  {m}");
        }
    }
    // Beside the metrics file when one is asked for, else beside the weights.
    let results_path = match &args.output_json {
        Some(p) => p.with_extension("results.json"),
        // Never into the weights cache: a registry model's results go to the working folder.
        None => match &resolved.registry {
            Some((name, _)) => std::path::PathBuf::from(format!(
                "{}-{}-results.json",
                name.replace(':', "_"),
                spec.name()
            )),
            None => weights.with_file_name(format!("{}-results.json", spec.name())),
        },
    };
    let text = serde_json::to_string(&output.detections)? + "\n";
    write_atomically(&results_path, |tmp| {
        std::fs::write(tmp, &text).with_context(|| format!("writing {}", results_path.display()))
    })?;
    eprintln!(
        "{} detections on {} images written to {}",
        output.detections.len(),
        dataset.coco.images.len(),
        results_path.display()
    );
    print!("{}", output.metrics.summary());
    println!();
    print!("{}", output.metrics.per_category_table());
    let mut json = output.metrics.to_json();
    add_voc_metrics(&spec, &dataset.coco, &output.detections, &mut json)?;
    if let Some(path) = &args.output_json {
        write_json(path, &json)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// On Pascal VOC roots: prints VOC07 and VOC12 AP@0.5 per class and adds them to `json` as
/// `"voc"`. Other datasets: nothing.
fn add_voc_metrics(
    spec: &DatasetSpec,
    gt: &CocoDataset,
    detections: &[Detection],
    json: &mut serde_json::Value,
) -> anyhow::Result<()> {
    if !matches!(spec, DatasetSpec::Voc { .. }) {
        return Ok(());
    }
    let mut voc = VocEvaluator::new(gt);
    voc.add_detections(detections)?;
    let metrics = voc.evaluate();
    println!();
    print!("{}", metrics.table());
    json["voc"] = metrics.to_json();
    Ok(())
}
