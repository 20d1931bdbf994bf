//! Checks a pickled tensor's rebuild arguments before anything is computed from them.
//!
//! `candle_core::pickle` turns `_rebuild_tensor_v2(storage, offset, size, stride, ...)` into a
//! layout by indexing the argument tuples and multiplying offsets and sizes unchecked, so a
//! hostile header can panic it (a short tuple, an overflow) or ask [`super::read_tensor`] for
//! an enormous buffer. This module walks the same structure first (the `_rebuild_parameter` and
//! `_rebuild_from_type_v2` wrappers included), with checked arithmetic and explicit limits.
use anyhow::{bail, Context};
use candle_core::pickle::Object;

/// The largest tensor read from a `.pth`: 16 GiB. The largest detector and backbone tensors
/// are well under 1 GiB; the limit stops a hostile size before any allocation.
pub const MAX_TENSOR_BYTES: usize = 16 << 30;

/// The bytes one tensor occupies in its storage, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorExtent {
    /// Offset of the first element, in bytes.
    pub start: usize,
    /// Elements × element size, in bytes.
    pub bytes: usize,
}

/// Validates the rebuild call of a state-dict value. `Ok(None)` when the value is not a tensor
/// or its dtype is one candle reports itself; `Ok(Some(extent))` when it is safe to convert.
pub fn check_tensor_header(value: &Object) -> anyhow::Result<Option<TensorExtent>> {
    let Object::Reduce { callable, args } = value else {
        return Ok(None);
    };
    let (callable, args) = match class_name(callable) {
        Some(("torch._tensor", "_rebuild_from_type_v2")) => {
            // (func, type, args, state): candle takes func and args.
            let outer = tuple(args, 3, "_rebuild_from_type_v2")?;
            (&outer[0], &outer[2])
        }
        Some(("torch._utils", "_rebuild_parameter")) => {
            let outer = tuple(args, 1, "_rebuild_parameter")?;
            let Object::Reduce { callable, args } = &outer[0] else {
                return Ok(None);
            };
            (&**callable, &**args)
        }
        _ => (&**callable, &**args),
    };
    if class_name(callable) != Some(("torch._utils", "_rebuild_tensor_v2")) {
        return Ok(None);
    }
    // (storage, storage_offset, size, stride, ...)
    let args = tuple(args, 4, "_rebuild_tensor_v2")?;
    let Object::PersistentLoad(storage) = &args[0] else {
        bail!("the tensor's storage is not a persistent reference");
    };
    // ("storage", storage class, key, location, element count)
    let storage = tuple(storage, 5, "the storage reference")?;
    let Some((_, storage_class)) = class_name(&storage[1]) else {
        bail!("the storage type is not a class");
    };
    let offset = match &args[1] {
        Object::Int(v) => i64::from(*v),
        Object::Long(v) => *v,
        _ => bail!("the storage offset is not an integer"),
    };
    let size = dims(&args[2], "size")?;
    let stride = dims(&args[3], "stride")?;
    if size.len() != stride.len() {
        bail!(
            "size {size:?} and stride {stride:?} have different lengths ({} and {})",
            size.len(),
            stride.len()
        );
    }
    let Some(element_size) = element_size(storage_class) else {
        return Ok(None); // an unsupported dtype: candle names it
    };
    let offset = usize::try_from(offset).context("the storage offset is negative")?;
    let start = offset
        .checked_mul(element_size)
        .with_context(|| format!("the storage offset {offset} overflows a byte count"))?;
    // Zero-sized dims still count as 1 here: layout checks multiply the other dims together.
    let bytes = size
        .iter()
        .try_fold(element_size, |acc, &d| acc.checked_mul(d.max(1)))
        .with_context(|| format!("size {size:?} overflows a byte count"))?;
    let bytes = if size.contains(&0) { 0 } else { bytes };
    if bytes > MAX_TENSOR_BYTES {
        bail!(
            "size {size:?} needs {bytes} bytes, over the limit of {MAX_TENSOR_BYTES} bytes \
             (16 GiB) per tensor"
        );
    }
    start
        .checked_add(bytes)
        .with_context(|| format!("offset {start} + {bytes} bytes overflows"))?;
    Ok(Some(TensorExtent { start, bytes }))
}

fn class_name(object: &Object) -> Option<(&str, &str)> {
    match object {
        Object::Class {
            module_name,
            class_name,
        } => Some((module_name, class_name)),
        _ => None,
    }
}

/// A tuple of at least `min` elements.
fn tuple<'a>(object: &'a Object, min: usize, what: &str) -> anyhow::Result<&'a [Object]> {
    match object {
        Object::Tuple(items) if items.len() >= min => Ok(items),
        Object::Tuple(items) => bail!(
            "{what} has {} arguments, expected at least {min}",
            items.len()
        ),
        _ => bail!("{what}: the arguments are not a tuple"),
    }
}

/// A size or stride: a tuple of non-negative 32-bit integers (what torch writes and candle
/// reads).
fn dims(object: &Object, what: &str) -> anyhow::Result<Vec<usize>> {
    let Object::Tuple(items) = object else {
        bail!("the tensor's {what} is not a tuple");
    };
    items
        .iter()
        .map(|item| match item {
            Object::Int(v) if *v >= 0 => Ok(*v as usize),
            other => bail!("the tensor's {what} holds {other:?}, expected non-negative integers"),
        })
        .collect()
}

/// Bytes per element of the storage classes candle reads.
fn element_size(storage_class: &str) -> Option<usize> {
    match storage_class {
        "FloatStorage" => Some(4),
        "DoubleStorage" | "LongStorage" => Some(8),
        "HalfStorage" | "BFloat16Storage" => Some(2),
        "ByteStorage" => Some(1),
        _ => None,
    }
}
