//! One file per subcommand; each turns its raw arguments into typed options once and calls into
//! the model, weights, training and output modules. The helpers below are shared by several
//! commands: the device, the dataset named on the command line, and opening one of its splits.
pub mod bench;
pub mod convert;
pub mod doctor;
pub mod eval;
pub mod export;
pub mod info;
pub mod parity;
pub mod predict;
pub mod train;

use std::sync::Arc;

use anyhow::{bail, Context};
use candle_core::Device;
use datasets::dataset::{Dataset, DatasetSpec};
use datasets::image::DecodeLimits;
use datasets::shapes::Split;

use crate::cli::DatasetArgs;

/// The dataset named on the command line, if any.
pub fn dataset_spec(args: &DatasetArgs) -> anyhow::Result<Option<DatasetSpec>> {
    let shapes_knobs = [
        args.shapes_train_images,
        args.shapes_val_images,
        args.shapes_image_size,
    ];
    let spec = match (&args.dataset, args.annotations.as_slice()) {
        (Some(name), _) => Some(DatasetSpec::from_name(name)?),
        (None, []) => None,
        (None, annotations) => Some(DatasetSpec::from_annotations(
            annotations,
            args.images.as_deref(),
        )?),
    };
    let spec = with_voc_splits(spec, args)?;
    match spec {
        Some(DatasetSpec::Shapes(_)) if args.max_image_pixels.is_some() => {
            bail!("--max-image-pixels applies to image files, not to the rendered `shapes` dataset")
        }
        Some(DatasetSpec::Shapes(mut c)) => {
            c.num_train = args.shapes_train_images.unwrap_or(c.num_train);
            c.num_val = args.shapes_val_images.unwrap_or(c.num_val);
            c.image_size = args.shapes_image_size.unwrap_or(c.image_size);
            for (option, value, least) in [
                ("--shapes-train-images", c.num_train, 1),
                ("--shapes-val-images", c.num_val, 1),
                ("--shapes-image-size", c.image_size, 32),
            ] {
                if value < least {
                    bail!("{option} must be at least {least}, got {value}");
                }
            }
            Ok(Some(DatasetSpec::Shapes(c)))
        }
        other if shapes_knobs.iter().any(Option::is_some) => {
            bail!(
                "--shapes-* options apply to `--dataset shapes` only, not to {}",
                other.map_or("this dataset".into(), |s| format!("`{}`", s.name()))
            )
        }
        other => Ok(other),
    }
}

/// Applies `--train-split` / `--val-split`, which only VOC roots have.
fn with_voc_splits(
    spec: Option<DatasetSpec>,
    args: &DatasetArgs,
) -> anyhow::Result<Option<DatasetSpec>> {
    let given = args.train_split.is_some() || args.val_split.is_some();
    match spec {
        Some(DatasetSpec::Voc {
            roots,
            train_split,
            val_split,
        }) => Ok(Some(DatasetSpec::Voc {
            roots,
            train_split: args.train_split.clone().unwrap_or(train_split),
            val_split: args.val_split.clone().unwrap_or(val_split),
        })),
        Some(other) if given => bail!(
            "--train-split/--val-split apply to Pascal VOC roots only, not to `{}`",
            other.name()
        ),
        other => Ok(other),
    }
}

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> anyhow::Result<Device> {
    let ordinal = match s {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("unknown device `{s}`: expected `cpu`, `cuda` or `cuda:N`"),
        },
    };
    Device::new_cuda(ordinal)
        .map_err(crate::weights::pth::without_backtrace)
        .with_context(|| {
            format!("cannot open {s}\nhint: CUDA needs a build with `--features cuda` and a GPU")
        })
}

/// `--max-image-pixels` (None: the default, PIL's bomb size) as decode limits, refused
/// outside [`DecodeLimits::MAX_PIXELS_RANGE`].
pub fn decode_limits(max_image_pixels: Option<u64>) -> anyhow::Result<DecodeLimits> {
    let Some(max_pixels) = max_image_pixels else {
        return Ok(DecodeLimits::default());
    };
    let range = DecodeLimits::MAX_PIXELS_RANGE;
    if !range.contains(&max_pixels) {
        bail!(
            "--max-image-pixels must be in {}..={} pixels (width x height), got {max_pixels}",
            range.start(),
            range.end()
        );
    }
    Ok(DecodeLimits { max_pixels })
}

/// Opens one split of a dataset, its images decoded under `limits`.
pub fn open_split(
    spec: &DatasetSpec,
    split: Split,
    limits: DecodeLimits,
) -> anyhow::Result<Arc<Dataset>> {
    Ok(Arc::new(
        Dataset::open(spec, split)?.with_decode_limits(limits),
    ))
}

#[cfg(test)]
mod tests;

/// A CUDA out-of-memory error anywhere in `err`'s chain becomes
/// [`backbones::oom::OutOfMemory`], which names the batch size and image size to lower; any
/// other error is returned as it is.
pub fn explain_out_of_memory(
    err: anyhow::Error,
    stage: &str,
    batch_size: usize,
    sizes: (Option<usize>, Option<usize>),
) -> anyhow::Error {
    let oom = err
        .chain()
        .find_map(|cause| backbones::oom::OutOfMemory::from_error(cause, stage, batch_size, sizes));
    match oom {
        Some(oom) => oom.into(),
        None => err,
    }
}
