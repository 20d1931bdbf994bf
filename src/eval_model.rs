//! `detect eval --weights MODEL --dataset ...|--annotations --images`: runs a detector over a
//! dataset's validation split with a progress bar, writes the detections as a COCO results file
//! and evaluates them with the same evaluator as `detect eval --results`.
use std::path::Path;

use anyhow::Context;
use datasets::shapes::Split;
use indicatif::{ProgressBar, ProgressStyle};

use crate::atomic_file::write_atomically;
use crate::cli::EvalArgs;
use crate::inference::{evaluate, EvalPass};
use crate::load::load_detector;
use crate::train::{dataset_spec, open_split, parse_device};

/// Images per forward pass during evaluation.
const EVAL_BATCH: usize = 2;

pub fn run(args: &EvalArgs, weights: &Path) -> anyhow::Result<()> {
    let spec = dataset_spec(&args.data)?.context(
        "`detect eval --weights` needs a dataset: --dataset NAME or --annotations FILE --images DIR",
    )?;
    let device = parse_device(&args.device)?;
    let loaded = load_detector(weights, args.backbone.as_deref(), &device)?;
    let dataset = open_split(&spec, Split::Val)?;
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
        None => weights.with_file_name(format!("{}-results.json", spec.name())),
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
    if let Some(path) = &args.output_json {
        let text = serde_json::to_string_pretty(&output.metrics.to_json())? + "\n";
        write_atomically(path, |tmp| {
            std::fs::write(tmp, &text).with_context(|| format!("writing {}", path.display()))
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
