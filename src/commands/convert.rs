//! `detect convert IN.pth OUT.safetensors`: a PyTorch checkpoint to safetensors, no Python.
//!
//! The state dict is found and read by [`crate::weights::pth`] (nested under `model`/`state_dict` or
//! top-level); the safetensors file is written atomically, so an interrupted conversion never
//! leaves a truncated output behind.
use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use crate::atomic::write_atomically;
use crate::cli::ConvertArgs;

/// What a conversion did.
#[derive(Debug)]
pub struct ConvertSummary {
    /// Number of tensors written.
    pub converted: usize,
    /// `(name, reason)` for each state-dict entry that was not written.
    pub skipped: Vec<(String, String)>,
    /// Keys the state dict was nested under (empty when top-level).
    pub key_path: Vec<String>,
}

/// Converts `input` (zip-format `torch.save`) to the safetensors file `output`.
pub fn convert_pth_to_safetensors(input: &Path, output: &Path) -> anyhow::Result<ConvertSummary> {
    let state = crate::weights::pth::read_pth(input)?;
    if state.tensors.is_empty() {
        anyhow::bail!(
            "`{}` holds no tensor that can be converted ({} skipped)",
            input.display(),
            state.skipped.len()
        );
    }
    let converted = state.tensors.len();
    let tensors: HashMap<String, candle_core::Tensor> = state.tensors.into_iter().collect();
    write_atomically(output, |temporary| {
        candle_core::safetensors::save(&tensors, temporary)
            .map_err(crate::weights::pth::without_backtrace)
            .with_context(|| format!("cannot write `{}`", output.display()))
    })?;
    Ok(ConvertSummary {
        converted,
        skipped: state.skipped,
        key_path: state.key_path,
    })
}

/// Runs `detect convert`: converts, then reports the counts (and each skipped entry) on stdout.
pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let summary = convert_pth_to_safetensors(&args.input, &args.output)?;
    let location = if summary.key_path.is_empty() {
        String::new()
    } else {
        format!(" (state dict under `{}`)", summary.key_path.join("."))
    };
    println!(
        "converted {} tensors, skipped {}{location}: `{}` -> `{}`",
        summary.converted,
        summary.skipped.len(),
        args.input.display(),
        args.output.display()
    );
    for (name, reason) in &summary.skipped {
        println!("  skipped `{name}`: {reason}");
    }
    Ok(())
}
