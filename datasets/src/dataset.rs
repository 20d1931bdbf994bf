//! Where a dataset comes from, by name: `coco` (detectron2's layout under `$DETECT_DATASETS`),
//! any COCO-format file + image folder, Pascal VOC roots, a YOLO `data.yaml`, or the built-in
//! `shapes`. Each opens to a [`Dataset`]: COCO records plus a way to get each image's pixels.
//!
//! `coco` reads `$DETECT_DATASETS/coco/annotations/instances_{train,val}2017.json` with the
//! images in `$DETECT_DATASETS/coco/{train,val}2017/`; the root defaults to `./datasets`.
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::coco::{CocoDataset, CocoError};
use crate::formats::{read_voc, read_yolo, FormatError, Layout};
use crate::image::{load_rgb_checked, DecodeLimits, ImageError, RgbImage};
use crate::shapes::{render, shapes_coco, ShapesConfig, Split};

/// The environment variable naming the folder that holds named datasets (`coco/`).
pub const DATASETS_ENV: &str = "DETECT_DATASETS";
/// The datasets root when [`DATASETS_ENV`] is unset.
pub const DEFAULT_DATASETS_ROOT: &str = "./datasets";

/// A dataset as the user named it.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    /// COCO 2017 in detectron2's layout under a root folder (`None`: [`datasets_root`]).
    Coco { root: Option<PathBuf> },
    /// Any COCO-format annotation file and the folder holding its images.
    Files {
        annotations: PathBuf,
        images: PathBuf,
    },
    /// Pascal VOC roots joined in order (VOC07+12: two roots), with the split list names used
    /// for training and for evaluation (`ImageSets/Main/<name>.txt`).
    Voc {
        roots: Vec<PathBuf>,
        train_split: String,
        val_split: String,
    },
    /// A YOLO dataset described by its `data.yaml` (`train` and `val` entries).
    Yolo { data_yaml: PathBuf },
    /// The built-in synthetic dataset.
    Shapes(ShapesConfig),
}

/// The VOC split lists used when none is named.
pub const DEFAULT_VOC_SPLITS: (&str, &str) = ("train", "val");

impl DatasetSpec {
    /// Parses a `--dataset` name: `coco` or `shapes` (with default settings).
    pub fn from_name(name: &str) -> Result<Self, DatasetError> {
        match name {
            "coco" => Ok(DatasetSpec::Coco { root: None }),
            "shapes" => Ok(DatasetSpec::Shapes(ShapesConfig::default())),
            other => Err(DatasetError::UnknownName(other.to_string())),
        }
    }

    /// The dataset that `--annotations` paths name, by their layout (see [`Layout::of`]): one
    /// COCO `.json` (with `images`), one YOLO `.yaml`, or one or more VOC roots.
    pub fn from_annotations(
        annotations: &[PathBuf],
        images: Option<&Path>,
    ) -> Result<Self, DatasetError> {
        let layouts: Vec<Option<Layout>> = annotations.iter().map(|p| Layout::of(p)).collect();
        if let Some(i) = layouts.iter().position(Option::is_none) {
            let path = annotations[i].clone();
            return Err(if path.exists() {
                DatasetError::UnknownLayout(path)
            } else {
                DatasetError::AnnotationsMissing(path)
            });
        }
        let all_voc = layouts.iter().all(|l| *l == Some(Layout::Voc));
        match (annotations, layouts.first().copied().flatten()) {
            ([], _) => Err(DatasetError::NoAnnotations),
            (roots, Some(Layout::Voc)) if all_voc => {
                reject_images(images, "a Pascal VOC root (images are in JPEGImages/)")?;
                Ok(DatasetSpec::Voc {
                    roots: roots.to_vec(),
                    train_split: DEFAULT_VOC_SPLITS.0.into(),
                    val_split: DEFAULT_VOC_SPLITS.1.into(),
                })
            }
            ([yaml], Some(Layout::Yolo)) => {
                reject_images(images, "a YOLO data.yaml (it names its image folders)")?;
                Ok(DatasetSpec::Yolo {
                    data_yaml: yaml.clone(),
                })
            }
            ([json], Some(Layout::Coco)) => match images {
                Some(images) => Ok(DatasetSpec::Files {
                    annotations: json.clone(),
                    images: images.to_path_buf(),
                }),
                None => Err(DatasetError::CocoNeedsImages(json.clone())),
            },
            _ => Err(DatasetError::CannotJoin(
                annotations
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// A short name for run folders and messages.
    pub fn name(&self) -> String {
        match self {
            DatasetSpec::Coco { .. } => "coco".into(),
            DatasetSpec::Shapes(_) => "shapes".into(),
            DatasetSpec::Files { annotations, .. } => stem_or_custom(annotations),
            DatasetSpec::Voc { roots, .. } => roots
                .iter()
                .map(|r| stem_or_custom(r))
                .collect::<Vec<_>>()
                .join("+"),
            DatasetSpec::Yolo { data_yaml } => match data_yaml.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => stem_or_custom(dir),
                _ => stem_or_custom(data_yaml),
            },
        }
    }
}

fn stem_or_custom(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "custom".into())
}

fn reject_images(images: Option<&Path>, what: &str) -> Result<(), DatasetError> {
    match images {
        Some(dir) => Err(DatasetError::ImagesNotNeeded {
            images: dir.to_path_buf(),
            what: what.to_string(),
        }),
        None => Ok(()),
    }
}

/// Why a dataset could not be opened.
#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("unknown dataset `{0}`: expected `coco` or `shapes` (or use --annotations FILE --images DIR)")]
    UnknownName(String),
    #[error(
        "COCO dataset not found: {missing} does not exist (datasets root {root}, {root_origin}).\n\
         hint: put COCO 2017 in {root}/coco/ as annotations/instances_{{train,val}}2017.json with \
         train2017/ and val2017/ beside them, or set {env} to the folder that holds coco/, \
         e.g. `export {env}=/data/datasets`"
    )]
    CocoNotFound {
        missing: PathBuf,
        root: PathBuf,
        root_origin: String,
        env: &'static str,
    },
    #[error("image folder {0} does not exist")]
    ImageFolderMissing(PathBuf),
    #[error(
        "{0} is not an annotation layout detect reads: expected a COCO .json file, a YOLO \
         data.yaml, or a Pascal VOC root folder (one with Annotations/)"
    )]
    UnknownLayout(PathBuf),
    #[error("--annotations {0} does not exist")]
    AnnotationsMissing(PathBuf),
    #[error("no --annotations given")]
    NoAnnotations,
    #[error("{0} is a COCO annotation file: its images need --images DIR")]
    CocoNeedsImages(PathBuf),
    #[error("--images {images} is not used with {what}: leave it out")]
    ImagesNotNeeded { images: PathBuf, what: String },
    #[error(
        "cannot join {0}: only Pascal VOC roots can be given together (as VOC07+12); give one \
         COCO .json or one YOLO data.yaml"
    )]
    CannotJoin(String),
    #[error(transparent)]
    Coco(#[from] CocoError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// The root folder of named datasets: `$DETECT_DATASETS`, else `./datasets`.
pub fn datasets_root() -> PathBuf {
    match std::env::var_os(DATASETS_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_DATASETS_ROOT),
    }
}

/// Where a dataset's pixels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Files named by each record's `file_name`, relative to this folder.
    Folder(PathBuf),
    /// Each record's `file_name` is the image's own path (VOC and YOLO datasets, whose images
    /// may sit in several folders), as detectron2's dataset dicts hold it.
    FileNames,
    /// Rendered on demand (record `i` is image `i` of the split).
    Shapes { config: ShapesConfig, split: Split },
}

/// A split of a dataset: its COCO records, where to read each image and the limits its files
/// are decoded under.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub coco: CocoDataset,
    pub images: ImageSource,
    /// Checked on each file's header before decoding (default: [`DecodeLimits::default`]).
    pub decode_limits: DecodeLimits,
}

impl Dataset {
    /// Opens one split of a dataset (for `Files`, the split is ignored: the file is the split).
    pub fn open(spec: &DatasetSpec, split: Split) -> Result<Self, DatasetError> {
        match spec {
            DatasetSpec::Shapes(config) => Ok(Dataset {
                coco: shapes_coco(config, split),
                images: ImageSource::Shapes {
                    config: config.clone(),
                    split,
                },
                decode_limits: DecodeLimits::default(),
            }),
            DatasetSpec::Files {
                annotations,
                images,
            } => Self::from_files(annotations, images),
            DatasetSpec::Voc {
                roots,
                train_split,
                val_split,
            } => {
                let name = match split {
                    Split::Train => train_split,
                    Split::Val => val_split,
                };
                Ok(Dataset {
                    coco: read_voc(roots, name)?.coco,
                    images: ImageSource::FileNames,
                    decode_limits: DecodeLimits::default(),
                })
            }
            DatasetSpec::Yolo { data_yaml } => {
                let name = match split {
                    Split::Train => "train",
                    Split::Val => "val",
                };
                Ok(Dataset {
                    coco: read_yolo(data_yaml, name)?,
                    images: ImageSource::FileNames,
                    decode_limits: DecodeLimits::default(),
                })
            }
            DatasetSpec::Coco { root } => {
                let (root, mut root_origin) = match root {
                    Some(r) => (r.clone(), "given explicitly".to_string()),
                    None => (
                        datasets_root(),
                        match std::env::var_os(DATASETS_ENV) {
                            Some(v) if !v.is_empty() => format!("from ${DATASETS_ENV}"),
                            _ => format!("the default; ${DATASETS_ENV} is not set"),
                        },
                    ),
                };
                if root.is_relative() {
                    if let Ok(cwd) = std::env::current_dir() {
                        root_origin += &format!("; relative to {}", cwd.display());
                    }
                }
                let year = match split {
                    Split::Train => "train2017",
                    Split::Val => "val2017",
                };
                let coco = root.join("coco");
                let annotations = coco.join(format!("annotations/instances_{year}.json"));
                let images = coco.join(year);
                for missing in [&annotations, &images] {
                    if !missing.exists() {
                        return Err(DatasetError::CocoNotFound {
                            missing: missing.clone(),
                            root,
                            root_origin,
                            env: DATASETS_ENV,
                        });
                    }
                }
                Self::from_files(&annotations, &images)
            }
        }
    }

    /// Reads a COCO annotation file whose images live in `images`.
    pub fn from_files(annotations: &Path, images: &Path) -> Result<Self, DatasetError> {
        let coco = CocoDataset::load(annotations)?;
        if !images.is_dir() {
            return Err(DatasetError::ImageFolderMissing(images.to_path_buf()));
        }
        Ok(Dataset {
            coco,
            images: ImageSource::Folder(images.to_path_buf()),
            decode_limits: DecodeLimits::default(),
        })
    }

    /// The same dataset, its files decoded under `limits` (`--max-image-pixels`).
    pub fn with_decode_limits(self, limits: DecodeLimits) -> Self {
        Dataset {
            decode_limits: limits,
            ..self
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.coco.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.coco.images.is_empty()
    }

    /// The path (or, for `shapes`, the record name) of image `index`.
    pub fn image_path(&self, index: usize) -> PathBuf {
        let name = &self.coco.images[index].file_name;
        match &self.images {
            ImageSource::Folder(dir) => dir.join(name),
            ImageSource::FileNames | ImageSource::Shapes { .. } => PathBuf::from(name),
        }
    }

    /// Decodes image `index` to RGB under [`Dataset::decode_limits`], checking its size
    /// against the record's width/height.
    pub fn load_image(&self, index: usize) -> Result<RgbImage, ImageError> {
        let info = &self.coco.images[index];
        match &self.images {
            ImageSource::Folder(_) | ImageSource::FileNames => load_rgb_checked(
                &self.image_path(index),
                info.width as usize,
                info.height as usize,
                &self.decode_limits,
            ),
            ImageSource::Shapes { config, split } => Ok(render(config, *split, index).0),
        }
    }
}
