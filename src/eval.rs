//! `detect eval`: COCO box AP of a results file against COCO annotations (pycocotools'
//! numbers, see `datasets::eval`), printed as pycocotools prints it plus a per-category table,
//! and optionally written as JSON.
use std::path::Path;

use anyhow::{bail, Context};
use datasets::coco::CocoDataset;
use datasets::eval::CocoEvaluator;

use crate::atomic_file::write_atomically;
use crate::cli::EvalArgs;

/// Runs `detect eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(weights) = &args.weights {
        return crate::eval_model::run(&args, weights);
    }
    let Some(results) = &args.results else {
        bail!("`detect eval` needs --results RESULTS.json (a COCO results file)\nhint: detect eval --annotations instances_val2017.json --results results.json");
    };
    let Some(annotations) = &args.data.annotations else {
        bail!("`detect eval --results` needs --annotations GT.json, the COCO annotations the results refer to");
    };
    let gt = CocoDataset::load(annotations)
        .with_context(|| format!("reading annotations {}", annotations.display()))?;
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
    if let Some(path) = &args.output_json {
        write_json(path, &metrics.to_json())?;
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
