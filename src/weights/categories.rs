//! What a torchvision-layout detector's labels mean. torchvision's 91-output COCO detectors
//! label by COCO category id; any other class count follows the contiguous convention (label i
//! = the i-th category by ascending id), but which categories those are is not in the file.
//! [`labels_for`] takes them from `--categories FILE`, from the registry, or (91 outputs only)
//! COCO, and refuses to guess otherwise: reading label i as id i silently scores the wrong
//! classes on sparse ids such as COCO's.
use std::path::Path;

use anyhow::{bail, Context};
use datasets::coco::{Category, CategoryMap, COCO_TORCHVISION_NUM_CLASSES};

/// Reads `--categories FILE`: a JSON list of `{"id", "name"}` (COCO's `categories`), or a COCO
/// annotation file holding one.
pub fn read_categories(path: &Path) -> anyhow::Result<Vec<Category>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --categories `{}`", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--categories `{}` is not valid JSON", path.display()))?;
    let list = match value {
        serde_json::Value::Object(mut o) => o.remove("categories").with_context(|| {
            format!(
                "--categories `{}`: expected a JSON list of {{\"id\", \"name\"}} or an object \
                 with a `categories` list",
                path.display()
            )
        })?,
        other => other,
    };
    let categories: Vec<Category> = serde_json::from_value(list).with_context(|| {
        format!(
            "--categories `{}`: each entry needs an integer `id` and a string `name`",
            path.display()
        )
    })?;
    if categories.is_empty() {
        bail!("--categories `{}` lists no categories", path.display());
    }
    let mut ids: Vec<u64> = categories.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "--categories `{}`: category id {} appears twice",
            path.display(),
            w[0]
        );
    }
    Ok(categories)
}

/// The label → category map of torchvision-layout weights with `num_classes` outputs
/// (background included); `known` is what the registry says about the file.
pub fn labels_for(
    num_classes: usize,
    given: Option<&[Category]>,
    known: Option<&CategoryMap>,
    weights: &Path,
) -> anyhow::Result<CategoryMap> {
    if let Some(categories) = given {
        if categories.len() + 1 == num_classes {
            return Ok(CategoryMap::from_categories(categories));
        }
        let max_id = categories.iter().map(|c| c.id).max().unwrap_or(0);
        if num_classes == COCO_TORCHVISION_NUM_CLASSES && max_id < num_classes as u64 {
            // 91 outputs labelled by id (torchvision's COCO layout) with the user's names.
            return identity_map(categories);
        }
        bail!(
            "--categories lists {} categories, but `{}` has {num_classes} outputs ({} \
             categories + background)",
            categories.len(),
            weights.display(),
            num_classes - 1
        );
    }
    if let Some(map) = known {
        return Ok(map.clone());
    }
    if num_classes == COCO_TORCHVISION_NUM_CLASSES {
        return Ok(CategoryMap::coco_torchvision());
    }
    bail!(
        "`{}` has {num_classes} outputs, not torchvision's 91-output COCO layout, so which \
         category each label stands for is not in the file\nhint: pass --categories FILE, the \
         `categories` list of the dataset the weights were trained on (a JSON list of \
         {{\"id\", \"name\"}} in any order, or that dataset's COCO annotation file); label i is \
         then the i-th category by ascending id",
        weights.display()
    )
}

fn identity_map(categories: &[Category]) -> anyhow::Result<CategoryMap> {
    let list: Vec<serde_json::Value> = categories
        .iter()
        .map(|c| serde_json::json!({"id": c.id, "name": c.name}))
        .collect();
    Ok(serde_json::from_value(
        serde_json::json!({"labels": "identity", "categories": list}),
    )?)
}

#[cfg(test)]
mod tests;
