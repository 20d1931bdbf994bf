//! A YOLO (Ultralytics) dataset read into COCO records.
//!
//! `data.yaml` names the classes and where each split's images are:
//! ```yaml
//! path: .            # dataset root; relative to this file's folder (absent: the folder)
//! train: images/train  # a folder, a .txt list of images, or a list of either
//! val: images/val
//! names: [cat, dog]  # or a map {0: cat, 1: dog}
//! ```
//! Each image's labels are in the `.txt` file at the same path with the last `images` folder
//! replaced by `labels` (`images/train/a.jpg` → `labels/train/a.txt`), one object per line:
//! `class cx cy w h`, normalised to `[0, 1]` by the image's width and height. A line with more
//! values is a polygon `class x1 y1 x2 y2 ...`, whose enclosing box is used (as Ultralytics
//! does). A missing or empty label file is an image without objects.
//!
//! As Ultralytics resolves them: a split path starting with `../` that does not exist is tried
//! without that prefix (the layout some exporters write); a `.txt` list's `./x` lines are
//! relative to the list's folder, other relative lines to the dataset root.
//!
//! COCO records: category id = class index + 1 (names by index); image ids 1..N in sorted path
//! order, `file_name` = the image's path; width and height from the image's header;
//! `bbox = [(cx - w/2) W, (cy - h/2) H, w W, h H]`.
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::{image_size, FormatError};
use crate::coco::{Annotation, Category, CocoDataset, ImageInfo};

/// Image extensions listed from a split folder (Ultralytics' set minus video-like formats).
const IMAGE_EXTENSIONS: [&str; 8] = ["bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp", "mpo"];
/// The ones our decoder reads.
const DECODED_EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

#[derive(Debug, Deserialize)]
struct DataYaml {
    path: Option<PathBuf>,
    train: Option<Sources>,
    val: Option<Sources>,
    test: Option<Sources>,
    names: Option<Names>,
    nc: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Sources {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Names {
    List(Vec<String>),
    Map(BTreeMap<u64, String>),
}

/// Reads split `split` (`train`, `val` or `test`) of the dataset described by `data_yaml`.
pub fn read_yolo(data_yaml: &Path, split: &str) -> Result<CocoDataset, FormatError> {
    let config_error = |message: String| FormatError::YoloConfig {
        path: data_yaml.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(data_yaml).map_err(|e| FormatError::io(data_yaml, e))?;
    let data: DataYaml = serde_yaml_ng::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        FormatError::Yaml {
            path: data_yaml.to_path_buf(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    let names: Vec<(u64, String)> = match data.names {
        Some(Names::List(list)) => (0..).zip(list).collect(),
        Some(Names::Map(map)) => map.into_iter().collect(),
        None => {
            return Err(config_error(
                "no `names`: expected a list or an {id: name} map".into(),
            ))
        }
    };
    if let Some(nc) = data.nc {
        if nc != names.len() {
            return Err(config_error(format!(
                "`nc` is {nc} but `names` has {} entries",
                names.len()
            )));
        }
    }
    let folder = data_yaml.parent().unwrap_or(Path::new("")).to_path_buf();
    let root: PathBuf = match data.path {
        Some(p) if p.is_absolute() => p,
        Some(p) => folder.join(p),
        None => folder,
    }
    // `path: .` adds nothing to the image paths.
    .components()
    .filter(|c| *c != Component::CurDir)
    .collect();
    let sources = match split {
        "train" => data.train,
        "val" => data.val,
        "test" => data.test,
        other => {
            return Err(config_error(format!(
                "unknown split `{other}`: expected train, val or test"
            )))
        }
    };
    let sources = match sources {
        Some(Sources::One(p)) => vec![p],
        Some(Sources::Many(list)) => list,
        None => return Err(config_error(format!("no `{split}` entry"))),
    };
    let mut image_paths = Vec::new();
    for source in sources {
        let mut path = root.join(&source);
        if !path.exists() {
            if let Ok(rest) = source.strip_prefix("..") {
                path = root.join(rest);
            }
        }
        list_images(&path, &root, &mut image_paths).map_err(|e| match e {
            FormatError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                config_error(format!(
                    "`{split}` names {}, which does not exist",
                    path.display()
                ))
            }
            other => other,
        })?;
    }
    image_paths.sort();
    image_paths.dedup();
    let class_ids: BTreeMap<u64, u64> = names.iter().map(|(c, _)| (*c, c + 1)).collect();
    let mut coco = CocoDataset {
        images: Vec::with_capacity(image_paths.len()),
        annotations: Vec::new(),
        categories: names
            .iter()
            .map(|(c, name)| Category {
                id: c + 1,
                name: name.clone(),
                supercategory: String::new(),
            })
            .collect(),
    };
    for path in image_paths {
        let (width, height) = image_size(&path)?;
        let image_id = coco.images.len() as u64 + 1;
        let labels = label_path(&path);
        if labels.is_file() {
            let text = std::fs::read_to_string(&labels).map_err(|e| FormatError::io(&labels, e))?;
            for (i, line) in text.lines().enumerate() {
                let label_error = |message: String| FormatError::YoloLabel {
                    path: labels.clone(),
                    line: i + 1,
                    message,
                };
                let Some((class, bbox)) =
                    parse_label_line(line, width, height).map_err(label_error)?
                else {
                    continue;
                };
                let Some(&category_id) = class_ids.get(&class) else {
                    return Err(label_error(format!(
                        "class {class} is not in `names` of {} ({} classes)",
                        data_yaml.display(),
                        names.len()
                    )));
                };
                coco.annotations.push(Annotation {
                    id: coco.annotations.len() as u64 + 1,
                    image_id,
                    category_id,
                    bbox,
                    area: bbox[2] * bbox[3],
                    iscrowd: false,
                });
            }
        }
        coco.images.push(ImageInfo {
            id: image_id,
            file_name: path.to_string_lossy().into_owned(),
            width,
            height,
        });
    }
    Ok(coco)
}

/// The label file of an image: the last `images` folder replaced by `labels`, extension `.txt`.
pub fn label_path(image: &Path) -> PathBuf {
    let parts: Vec<_> = image.components().collect();
    let last_images = parts
        .iter()
        .rposition(|c| c.as_os_str() == "images" && parts.len() > 1);
    let mut out = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        if Some(i) == last_images && i + 1 < parts.len() {
            out.push("labels");
        } else {
            out.push(part);
        }
    }
    out.set_extension("txt");
    out
}

/// One label line → `(class, COCO [x, y, w, h] in pixels)`; `None` for a blank line.
fn parse_label_line(
    line: &str,
    width: u32,
    height: u32,
) -> Result<Option<(u64, [f64; 4])>, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.is_empty() {
        return Ok(None);
    }
    let class = fields[0]
        .parse::<f64>()
        .ok()
        .filter(|c| *c >= 0.0 && c.fract() == 0.0)
        .ok_or_else(|| format!("class `{}` is not a non-negative integer", fields[0]))?
        as u64;
    let mut values = Vec::with_capacity(fields.len() - 1);
    for field in &fields[1..] {
        match field.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => values.push(v),
            _ => {
                return Err(format!(
                    "`{field}` is not a number in [0, 1] (coordinates are normalised by the \
                     image size)"
                ))
            }
        }
    }
    let (w, h) = (width as f64, height as f64);
    let bbox = match values.len() {
        4 => {
            let [cx, cy, bw, bh] = [values[0], values[1], values[2], values[3]];
            [(cx - bw / 2.0) * w, (cy - bh / 2.0) * h, bw * w, bh * h]
        }
        n if n >= 6 && n % 2 == 0 => {
            let xs = values.iter().step_by(2);
            let ys = values.iter().skip(1).step_by(2);
            let (x1, x2) = xs.fold((1f64, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let (y1, y2) = ys.fold((1f64, 0f64), |(lo, hi), &y| (lo.min(y), hi.max(y)));
            [x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h]
        }
        n => {
            return Err(format!(
                "{} values, expected 5 (`class cx cy w h`) or a polygon `class x1 y1 x2 y2 x3 \
                 y3 ...`",
                n + 1
            ))
        }
    };
    Ok(Some((class, bbox)))
}

/// Adds the images of `source` (a folder, searched recursively, or a `.txt` list) to `out`.
fn list_images(source: &Path, root: &Path, out: &mut Vec<PathBuf>) -> Result<(), FormatError> {
    if source.is_dir() {
        let entries = std::fs::read_dir(source).map_err(|e| FormatError::io(source, e))?;
        for entry in entries {
            let path = entry.map_err(|e| FormatError::io(source, e))?.path();
            if path.is_dir() {
                list_images(&path, root, out)?;
            } else if is_image(&path)? {
                out.push(path);
            }
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(source).map_err(|e| FormatError::io(source, e))?;
    let list_folder = source.parent().unwrap_or(Path::new(""));
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let path = match line.strip_prefix("./") {
            Some(rest) => list_folder.join(rest),
            None => root.join(line),
        };
        if !is_image(&path).map_err(|e| match e {
            FormatError::ImageHeader { message, .. } => FormatError::YoloLabel {
                path: source.to_path_buf(),
                line: i + 1,
                message,
            },
            other => other,
        })? {
            return Err(FormatError::YoloLabel {
                path: source.to_path_buf(),
                line: i + 1,
                message: format!("{} is not an image file", path.display()),
            });
        }
        out.push(path);
    }
    Ok(())
}

/// Whether `path` has an image extension; an error for image formats we cannot decode.
fn is_image(path: &Path) -> Result<bool, FormatError> {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return Ok(false);
    };
    let ext = ext.to_ascii_lowercase();
    if DECODED_EXTENSIONS.contains(&ext.as_str()) {
        Ok(true)
    } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        Err(FormatError::ImageHeader {
            path: path.to_path_buf(),
            message: format!("a .{ext} image: detect reads JPEG and PNG images"),
        })
    } else {
        Ok(false)
    }
}
