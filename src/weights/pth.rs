//! Reading PyTorch `torch.save` checkpoints (`.pth`) without Python and without executing code.
//!
//! A zip-format checkpoint (torch >= 1.6) holds `archive/data.pkl`, a pickle describing the saved
//! object, and one zip entry per tensor storage. `candle_core::pickle` interprets the pickle
//! (only tensor-rebuild globals are understood; nothing is executed); this module then
//!
//! - finds the state dict: the top-level dict when its values are tensors, else a nested dict
//!   such as `{"model": state_dict, "optimizer": ..., "iteration": N}` (detectron2, our
//!   trainer) or `{"state_dict": ...}` (candle's own reader returns nothing unless the key is
//!   passed, so we detect it),
//! - reads every tensor's bytes from its storage entry (contiguous or column-major layouts),
//! - reports entries it cannot convert (unsupported dtypes such as int32 or bool, non-tensor
//!   values) by name instead of dropping them silently.
//!
//! Legacy (pre-1.6, non-zip) files are rejected with an error naming the file: reading them
//! would need Python's pickle machinery.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::pickle::{Object, Stack, TensorInfo};
use candle_core::{DType, Device, Tensor};

/// Keys under which training scripts commonly nest the model's state dict, most likely first.
/// Used only to choose between several nested dicts that all hold tensors.
const STATE_DICT_KEYS: [&str; 5] = ["model", "state_dict", "model_state_dict", "module", "net"];

/// Bookkeeping entry that `nn.Module.state_dict()` attaches to the dict (module versions).
const TORCH_METADATA_KEY: &str = "_metadata";

/// A pickled dict's `(key, value)` entries, in order.
type PickleDict = Vec<(Object, Object)>;

/// How deep to look for a nested state dict (`{"a": {"b": state_dict}}` is depth 2).
const MAX_NESTING: usize = 3;

/// The tensors of one checkpoint, in the file's order, and what was left out.
#[derive(Debug)]
pub struct PthStateDict {
    /// `(name, tensor)` on the CPU, in the order the checkpoint lists them.
    pub tensors: Vec<(String, Tensor)>,
    /// `(name, reason)` for every entry of the state dict that is not a convertible tensor.
    pub skipped: Vec<(String, String)>,
    /// The path of keys the state dict was found under (`["model"]`), empty when top-level.
    pub key_path: Vec<String>,
}

/// Reads the state dict of a zip-format `torch.save` file.
pub fn read_pth(path: &Path) -> anyhow::Result<PthStateDict> {
    check_zip_format(path)?;
    let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("`{}` is not a readable zip archive", path.display()))?;
    let pickle_name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|name| name.ends_with("data.pkl"))
        .map(|name| name.into_owned())
        .with_context(|| {
            format!(
                "`{}` has no data.pkl: not a torch.save checkpoint",
                path.display()
            )
        })?;
    let storage_dir = PathBuf::from(pickle_name.trim_end_matches(".pkl"));

    let root = {
        let entry = zip.by_name(&pickle_name)?;
        let mut stack = Stack::empty();
        stack
            .read_loop(&mut BufReader::new(entry))
            .map_err(without_backtrace)
            .with_context(|| format!("cannot parse `{pickle_name}` in `{}`", path.display()))?;
        unwrap_torchscript_module(stack.finalize().map_err(without_backtrace)?)
    };
    let (key_path, state_dict) = find_state_dict(root)
        .with_context(|| format!("no state dict found in `{}`", path.display()))?;

    let mut tensors = Vec::new();
    let mut skipped = Vec::new();
    for (name, value) in state_dict {
        let name = match name {
            Object::Unicode(name) => name,
            other => {
                skipped.push((format!("{other:?}"), "the key is not a string".to_owned()));
                continue;
            }
        };
        if name == TORCH_METADATA_KEY {
            continue;
        }
        let kind = describe(&value);
        match value.into_tensor_info(Object::Unicode(name.clone()), &storage_dir) {
            Ok(Some(info)) => match read_tensor(&mut zip, &info) {
                Ok(tensor) => tensors.push((name, tensor)),
                Err(err) => skipped.push((name, format!("{err:#}"))),
            },
            Ok(None) => skipped.push((name, format!("not a tensor ({kind})"))),
            Err(err) => skipped.push((name, without_backtrace(err).to_string())),
        }
    }
    Ok(PthStateDict {
        tensors,
        skipped,
        key_path,
    })
}

/// Fails with a clear message unless `path` starts with a zip signature.
fn check_zip_format(path: &Path) -> anyhow::Result<()> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let read = file
        .read(&mut magic)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if read == 4 && &magic == b"PK\x03\x04" {
        return Ok(());
    }
    // Legacy torch.save files are a raw pickle stream: PROTO opcode 0x80 first.
    if read >= 1 && magic[0] == 0x80 {
        bail!(
            "`{}` is a legacy (pre-1.6, non-zip) torch.save file, which cannot be read without \
             executing Python\nhint: re-save it once in the zip format: python -c \"import torch; \
             torch.save(torch.load('IN', weights_only=True), 'OUT')\"",
            path.display()
        );
    }
    bail!(
        "`{}` is not a torch.save checkpoint (no zip signature)",
        path.display()
    )
}

/// TorchScript archives pickle a `__torch__.Module` whose state is the tensors dict.
fn unwrap_torchscript_module(root: Object) -> Object {
    match root {
        Object::Build { callable, args } => match *callable {
            Object::Reduce {
                callable: inner, ..
            } if matches!(&*inner, Object::Class { module_name, class_name }
                    if module_name == "__torch__" && class_name == "Module") =>
            {
                *args
            }
            callable => Object::Build {
                callable: Box::new(callable),
                args,
            },
        },
        other => other,
    }
}

/// Finds the state dict: of all dicts holding tensors (the root and nested ones), the one with
/// the most tensors; on a tie the shallower, then the one under the earlier of
/// [`STATE_DICT_KEYS`]. A tie that none of these breaks is an error listing the candidates.
fn find_state_dict(root: Object) -> anyhow::Result<(Vec<String>, PickleDict)> {
    let mut candidates = Vec::new();
    collect_tensor_dicts(&root, &mut Vec::new(), &mut candidates);
    let key_rank = |path: &[String]| {
        let first = path.first().map(String::as_str);
        STATE_DICT_KEYS
            .iter()
            .position(|key| Some(*key) == first)
            .unwrap_or(STATE_DICT_KEYS.len())
    };
    // Best first: most tensors, shallowest, preferred key.
    candidates.sort_by_key(|(path, count)| (std::cmp::Reverse(*count), path.len(), key_rank(path)));
    let chosen = match candidates.as_slice() {
        [] => bail!(
            "the checkpoint holds no dict of tensors (top level: {})",
            describe(&root)
        ),
        [(best, best_count), (second, second_count), ..]
            if best_count == second_count
                && best.len() == second.len()
                && key_rank(best) == key_rank(second) =>
        {
            bail!(
                "several dicts hold {best_count} tensors each and none is under a usual \
                 state-dict key ({}): {}",
                STATE_DICT_KEYS.join(", "),
                {
                    let mut names: Vec<String> = candidates
                        .iter()
                        .map(|(p, _)| format!("`{}`", p.join(".")))
                        .collect();
                    names.sort();
                    names.join(", ")
                }
            )
        }
        [(best, _), ..] => best.clone(),
    };
    let mut object = root;
    for key in &chosen {
        object = into_dict(object)?
            .into_iter()
            .find(|(k, _)| matches!(k, Object::Unicode(name) if name == key))
            .map(|(_, value)| value)
            .context("nested key vanished")?;
    }
    Ok((chosen, into_dict(object)?))
}

/// Pushes `(key path, tensor count)` for every dict, up to [`MAX_NESTING`] deep, with tensors.
fn collect_tensor_dicts(
    object: &Object,
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, usize)>,
) {
    let Object::Dict(entries) = object else {
        return;
    };
    let tensors = entries.iter().filter(|(_, value)| is_tensor(value)).count();
    if tensors > 0 {
        found.push((path.clone(), tensors));
    }
    if path.len() >= MAX_NESTING {
        return;
    }
    for (key, value) in entries {
        if let Object::Unicode(key) = key {
            path.push(key.clone());
            collect_tensor_dicts(value, path, found);
            path.pop();
        }
    }
}

fn into_dict(object: Object) -> anyhow::Result<PickleDict> {
    match object {
        Object::Dict(entries) => Ok(entries),
        other => bail!("expected a dict, got {}", describe(&other)),
    }
}

/// True for the pickle of a tensor or parameter (the globals `torch.save` uses to rebuild one).
fn is_tensor(object: &Object) -> bool {
    let Object::Reduce { callable, .. } = object else {
        return false;
    };
    matches!(&**callable, Object::Class { module_name, class_name }
        if (module_name == "torch._utils"
            && (class_name == "_rebuild_tensor_v2" || class_name == "_rebuild_parameter"))
            || (module_name == "torch._tensor" && class_name == "_rebuild_from_type_v2"))
}

/// A short description of a pickled value, for messages.
fn describe(object: &Object) -> String {
    match object {
        Object::Int(_) | Object::Long(_) => "int".to_owned(),
        Object::Float(_) => "float".to_owned(),
        Object::Unicode(_) => "str".to_owned(),
        Object::Bool(_) => "bool".to_owned(),
        Object::None => "None".to_owned(),
        Object::Tuple(_) => "tuple".to_owned(),
        Object::List(_) => "list".to_owned(),
        Object::Dict(entries) => format!("dict of {} entries", entries.len()),
        Object::Reduce { callable, .. } | Object::Build { callable, .. } => match &**callable {
            Object::Class {
                module_name,
                class_name,
            } => format!("{module_name}.{class_name}"),
            _ => "object".to_owned(),
        },
        _ => "object".to_owned(),
    }
}

/// Reads one tensor's bytes from its storage entry.
fn read_tensor(
    zip: &mut zip::ZipArchive<BufReader<File>>,
    info: &TensorInfo,
) -> anyhow::Result<Tensor> {
    let layout = &info.layout;
    let dims = layout.dims().to_vec();
    let fortran = dims.len() > 1 && !layout.is_contiguous() && layout.is_fortran_contiguous();
    if !layout.is_contiguous() && !fortran {
        bail!(
            "non-contiguous tensor (shape {dims:?}, strides {:?})",
            layout.stride()
        );
    }
    let element_count: usize = dims.iter().product();
    let byte_count = element_count * info.dtype.size_in_bytes();
    let start = layout.start_offset(); // bytes
    let entry = zip
        .by_name(&info.path)
        .with_context(|| format!("missing storage entry `{}`", info.path))?;
    let available = entry.size() as usize;
    if start + byte_count > available {
        bail!(
            "storage `{}` holds {available} bytes, the tensor needs {} from offset {start}",
            info.path,
            byte_count
        );
    }
    let mut bytes = Vec::with_capacity(byte_count);
    let mut entry = entry;
    std::io::copy(&mut (&mut entry).take(start as u64), &mut std::io::sink())?;
    entry.take(byte_count as u64).read_to_end(&mut bytes)?;
    let tensor = if fortran {
        // Column-major: read with the dims reversed, then reverse the axes back.
        let reversed: Vec<usize> = dims.iter().rev().copied().collect();
        let axes: Vec<usize> = (0..dims.len()).rev().collect();
        raw_tensor(&bytes, info.dtype, &reversed)?
            .permute(axes)?
            .contiguous()?
    } else {
        raw_tensor(&bytes, info.dtype, &dims)?
    };
    Ok(tensor)
}

fn raw_tensor(bytes: &[u8], dtype: DType, dims: &[usize]) -> anyhow::Result<Tensor> {
    Tensor::from_raw_buffer(bytes, dtype, dims, &Device::Cpu)
        .map_err(|e| without_backtrace(e).into())
}

/// candle attaches a backtrace to errors when `RUST_BACKTRACE` is set and prints it with the
/// message; user-facing messages keep only the message.
pub fn without_backtrace(err: candle_core::Error) -> candle_core::Error {
    match err {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}
