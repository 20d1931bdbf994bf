//! Command-line arguments, as typed by the user. Each command validates its own arguments once,
//! turning them into the typed configuration its implementation takes.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::model::precision::Precision;

/// Faster R-CNN with ResNeXt-FPN backbones: train, evaluate and run detectors, natively.
#[derive(Debug, Parser)]
#[command(name = "detect", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a Faster R-CNN detector.
    #[command(after_help = "Examples:\n  \
        detect train --dataset shapes\n  \
        detect train --backbone resnext101_32x4d --dataset coco --schedule 1x\n  \
        detect train --annotations train.json --images imgs/ --backbone-weights r50.pth\n  \
        detect train --annotations VOCdevkit/VOC2007 --annotations VOCdevkit/VOC2012 --train-split trainval --val-split test\n  \
        detect train --annotations my_yolo/data.yaml --schedule 3x\n  \
        detect train --annotations train.json --images imgs/ --weights torchvision:fasterrcnn_resnet50_fpn")]
    Train(Box<TrainArgs>),
    /// Evaluate detections (a results file) or a model on a dataset, with COCO box AP.
    #[command(after_help = "Examples:\n  \
        detect eval --annotations instances_val2017.json --results results.json\n  \
        detect eval --weights runs/shapes/model_final.safetensors --dataset shapes\n  \
        detect eval --weights runs/voc/model_final.safetensors --annotations VOCdevkit/VOC2007 --val-split test")]
    // A results file needs only the annotations, not the images they describe.
    #[command(mut_arg("annotations", |a| a.requires(clap::builder::Resettable::<clap::Id>::Reset)))]
    // Images are only read to run a model: a results file is scored without them.
    #[command(mut_arg("images", |a| a.conflicts_with("results")))]
    #[command(mut_arg("skip_bad_images", |a| a.conflicts_with("results")))]
    #[command(mut_arg("max_image_pixels", |a| a.conflicts_with("results")))]
    Eval(EvalArgs),
    /// Detect objects in images.
    #[command(after_help = "Examples:\n  \
        detect predict photo.jpg --weights model_final.safetensors\n  \
        detect predict a.jpg b.jpg --weights fasterrcnn.pth --backbone resnet50 --output out/ --json dets.json\n  \
        detect predict photo.jpg --weights torchvision:fasterrcnn_resnet50_fpn\n  \
        detect predict photo.jpg --weights finetuned.pth --backbone resnet50 --categories categories.json")]
    Predict(PredictArgs),
    /// Print a backbone's parameter count and multiply-add FLOPs.
    #[command(after_help = "Examples:\n  \
        detect info --backbone resnext101_32x4d\n  \
        detect info --backbone resnext50_8x14d --height 800 --width 1216 --json")]
    Info(InfoArgs),
    /// Convert a PyTorch `.pth` checkpoint to `.safetensors` (no Python needed).
    #[command(
        after_help = "Example:\n  detect convert fasterrcnn_resnet50_fpn.pth fasterrcnn_resnet50_fpn.safetensors"
    )]
    Convert(ConvertArgs),
    /// Write the whole detector as one ONNX model (for ONNX Runtime, TensorRT, OpenVINO).
    #[command(after_help = "Examples:\n  \
        detect export --weights runs/shapes/model_final.safetensors --output shapes.onnx\n  \
        detect export --weights fasterrcnn.pth --backbone resnet50 --output frcnn.onnx --opset 16\n  \
        detect export --random-init --backbone resnext101_32x4d --output x101.onnx")]
    Export(ExportArgs),
    /// Check the GPU setup: GPU, driver, CUDA, cuDNN and NCCL versions, then a few-second
    /// CUDA-against-CPU self-check (fails without a GPU or in a CPU-only build).
    #[command(after_help = "Example:\n  detect doctor")]
    Doctor,
    /// Every CUDA-against-CPU parity check (for scripts/gpu-run.sh on the GPU machine).
    #[command(hide = true)]
    Parity(ParityArgs),
    /// Times our side of a benchmark (for scripts/gpu_bench.py): one JSON line.
    #[command(hide = true)]
    Bench(BenchArgs),
}

/// Where a dataset comes from: a named dataset, a COCO annotation file + image folder, Pascal VOC
/// roots, or a YOLO data.yaml.
#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// A named dataset: `shapes` (built in, synthetic) or `coco` (read from
    /// `$DETECT_DATASETS/coco`, default root `./datasets`).
    #[arg(long, conflicts_with = "annotations")]
    pub dataset: Option<String>,
    /// The annotations, by layout: a COCO instances `.json` file (with `--images`), a Pascal VOC
    /// root (a folder with Annotations/, ImageSets/Main/, JPEGImages/; give it several times to
    /// join roots, as VOC07+12), or a YOLO `data.yaml`.
    #[arg(long, value_name = "PATH")]
    pub annotations: Vec<PathBuf>,
    /// The folder holding the images named in a COCO `--annotations` file.
    #[arg(long, requires = "annotations")]
    pub images: Option<PathBuf>,
    /// Pascal VOC: the split list trained on (`ImageSets/Main/<NAME>.txt`).
    #[arg(long, value_name = "NAME", requires = "annotations")]
    pub train_split: Option<String>,
    /// Pascal VOC: the split list evaluated on (`ImageSets/Main/<NAME>.txt`).
    #[arg(long, value_name = "NAME", requires = "annotations")]
    pub val_split: Option<String>,
    /// Turn unreadable images into counted warnings instead of errors.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// Largest image decoded, in pixels (width x height, 1..=4294967295; default 178956970,
    /// where PIL refuses a file as a decompression bomb). Raise it for larger trusted images.
    #[arg(long, value_name = "N")]
    pub max_image_pixels: Option<u64>,
    /// `shapes` only: images in the training split.
    #[arg(long, value_name = "N")]
    pub shapes_train_images: Option<usize>,
    /// `shapes` only: images in the validation split.
    #[arg(long, value_name = "N")]
    pub shapes_val_images: Option<usize>,
    /// `shapes` only: image side in pixels.
    #[arg(long, value_name = "PIXELS")]
    pub shapes_image_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Backbone architecture, e.g. `resnet50`, `resnext101_32x4d`, `resnext50_8x14d`.
    #[arg(long)]
    pub backbone: Option<String>,
    /// ImageNet weights for the backbone: `imagenet` (the published ones, downloaded once;
    /// default for --dataset coco and --annotations), `none` (random; default for shapes) or a
    /// file (torchvision names; .pth or .safetensors).
    #[arg(long, value_name = "imagenet|none|PATH", conflicts_with = "weights")]
    pub backbone_weights: Option<String>,
    /// A whole detector to start from: a file (.pth or .safetensors) or a registry name such as
    /// `torchvision:fasterrcnn_resnet50_fpn`. A different class count replaces its box
    /// predictor (cls_score, bbox_pred) with a fresh one.
    #[arg(long, value_name = "PATH|NAME")]
    pub weights: Option<String>,
    /// Backbone stages that train, counted from the top (0-5, torchvision's
    /// `trainable_backbone_layers`; default 3 from pretrained weights, 5 from random ones).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=5))]
    pub trainable_backbone_layers: Option<u8>,
    /// Schedule preset: `1x` (90k iterations at 16 images) or `3x` (270k).
    #[arg(long, conflicts_with = "iters")]
    pub schedule: Option<String>,
    /// Number of iterations (overrides the schedule).
    #[arg(long)]
    pub iters: Option<usize>,
    /// Iterations at which the learning rate is multiplied by 0.1, comma separated.
    #[arg(long, value_delimiter = ',', requires = "iters")]
    pub steps: Option<Vec<usize>>,
    /// Images per iteration.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate (default: 0.02 x batch / 16).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// `cpu` or `cuda[:N]` (default `cpu`; with --gpus, each worker's own GPU).
    #[arg(long)]
    pub device: Option<String>,
    #[command(flatten)]
    pub dist: DistArgs,
    /// Math of convolutions and matmuls: `tf32` (TF32 tensor cores for CUDA convolutions,
    /// PyTorch's default), `fp32` (full f32, slower) or `bf16` (mixed precision as
    /// torchvision's `--amp`: convolutions and matmuls in bf16, losses, RoIAlign, NMS and the
    /// optimizer in f32). On CPU `tf32` and `fp32` are the same; `bf16` gives bf16's numbers,
    /// not its speed.
    #[arg(long, value_enum, default_value_t = Precision::Tf32)]
    pub precision: Precision,
    /// Random seed (data order, sampling, initialisation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Shorter image side after resizing, in pixels (32..=8192): one value, or a comma list for
    /// multi-scale training (one drawn per image, e.g. `640,672,704,736,768,800`; evaluation uses
    /// the last). Default for `--schedule 3x`: detectron2's 640..800 in steps of 32.
    #[arg(long, value_delimiter = ',', value_name = "PIXELS")]
    pub min_size: Option<Vec<usize>>,
    /// Longest image side after resizing, in pixels (32..=8192, at least every --min-size).
    #[arg(long)]
    pub max_size: Option<usize>,
    /// Evaluate COCO AP on the validation split every N iterations (0 = only at the end).
    #[arg(long)]
    pub eval_period: Option<usize>,
    /// Output folder (default `runs/<dataset>-<backbone>-<time>`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write a checkpoint every N iterations (default: a fifth of the run, at most 5000).
    #[arg(long, value_name = "N")]
    pub checkpoint_period: Option<usize>,
    /// Log the losses to metrics.jsonl every N iterations.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub log_period: usize,
    /// Print, for every iteration, the time of each stage (data, backbone, rpn, roi_heads,
    /// backward, optimizer) and the host<->device transfers it made (0 on CPU). Waits for the
    /// device after each stage, so a GPU run gets a little slower.
    #[arg(long)]
    pub profile: bool,
    /// Continue from the output folder's `last_checkpoint`.
    #[arg(long, requires = "output")]
    pub resume: bool,
}

/// Data-parallel training (`detect train --gpus N`).
#[derive(Debug, Args)]
pub struct DistArgs {
    /// Train data-parallel on N GPUs of this node: starts N worker processes, one per GPU
    /// (cuda:0..N-1; choose GPUs with CUDA_VISIBLE_DEVICES). --batch-size is the total over all
    /// workers. With WORLD_SIZE and RANK set (torchrun, SLURM), detect is one worker instead.
    #[arg(long, value_name = "N")]
    pub gpus: Option<usize>,
    /// Nodes in all, each running `detect train --gpus N` with its --node-rank.
    #[arg(long, value_name = "M", requires = "gpus")]
    pub nodes: Option<usize>,
    /// This node, 0..M (node 0 runs rank 0, which writes the output).
    #[arg(long, value_name = "R", requires = "nodes")]
    pub node_rank: Option<usize>,
    /// Where rank 0 listens, the same on every node (default on one node: 127.0.0.1 and a free
    /// port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub master: Option<String>,
    /// Seconds a worker waits for the others before stopping with an error naming the rank
    /// that failed or hung.
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub dist_timeout: u64,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// A COCO results file (`[{image_id, category_id, bbox, score}]`) to evaluate.
    #[arg(long, conflicts_with = "weights")]
    pub results: Option<PathBuf>,
    /// A model to run over the dataset and evaluate: a file or a registry name
    /// (`torchvision:fasterrcnn_resnet50_fpn`).
    #[arg(long, value_name = "PATH|NAME")]
    pub weights: Option<String>,
    /// Backbone architecture, when the weights do not carry it.
    #[arg(long, conflicts_with = "results")]
    pub backbone: Option<String>,
    /// The categories of torchvision-layout weights with other than 91 outputs (a COCO
    /// `categories` JSON list, or the annotation file of the dataset they were trained on).
    #[arg(long, value_name = "FILE", requires = "weights")]
    pub categories: Option<PathBuf>,
    /// Write the metrics (AP, AP50, ..., per_category) to this JSON file.
    #[arg(long)]
    pub output_json: Option<PathBuf>,
    /// `cpu` or `cuda[:N]`, to run the model on (with `--weights`).
    #[arg(long, default_value = "cpu", conflicts_with = "results")]
    pub device: String,
    /// Math of convolutions and matmuls: `tf32` (TF32 tensor cores for CUDA convolutions,
    /// PyTorch's default), `fp32` (full f32, slower) or `bf16` (mixed precision as
    /// torchvision's `--amp`: convolutions and matmuls in bf16, losses, RoIAlign, NMS and the
    /// optimizer in f32). On CPU `tf32` and `fp32` are the same; `bf16` gives bf16's numbers,
    /// not its speed.
    #[arg(long, value_enum, default_value_t = Precision::Tf32, conflicts_with = "results")]
    pub precision: Precision,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Images to run on.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Model weights (.safetensors, .pth or a registry name such as
    /// `torchvision:fasterrcnn_resnet50_fpn`); default: the newest
    /// `runs/*/model_final.safetensors`.
    #[arg(long, value_name = "PATH|NAME")]
    pub weights: Option<String>,
    /// Backbone architecture, when the weights do not carry it.
    #[arg(long)]
    pub backbone: Option<String>,
    /// The categories of torchvision-layout weights with other than 91 outputs (a COCO
    /// `categories` JSON list, or the annotation file of the dataset they were trained on).
    #[arg(long, value_name = "FILE")]
    pub categories: Option<PathBuf>,
    /// Only report detections scoring at least this.
    #[arg(long, default_value_t = 0.5)]
    pub score_threshold: f32,
    /// Folder for the images with their detections drawn.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write the detections as a COCO results JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Math of convolutions and matmuls: `tf32` (TF32 tensor cores for CUDA convolutions,
    /// PyTorch's default), `fp32` (full f32, slower) or `bf16` (mixed precision as
    /// torchvision's `--amp`: convolutions and matmuls in bf16, losses, RoIAlign, NMS and the
    /// optimizer in f32). On CPU `tf32` and `fp32` are the same; `bf16` gives bf16's numbers,
    /// not its speed.
    #[arg(long, value_enum, default_value_t = Precision::Tf32)]
    pub precision: Precision,
    /// Largest image decoded, in pixels (width x height, 1..=4294967295; default 178956970,
    /// where PIL refuses a file as a decompression bomb). Raise it for larger trusted images.
    #[arg(long, value_name = "N")]
    pub max_image_pixels: Option<u64>,
    /// Print, for every image, the time of each stage (data, backbone, rpn, roi_heads) and the
    /// host<->device transfers it made (0 on CPU).
    #[arg(long)]
    pub profile: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Backbone architecture, e.g. `resnext101_32x4d`.
    #[arg(long, default_value = "resnext101_32x4d")]
    pub backbone: String,
    /// Input height for the backbone+FPN FLOPs.
    #[arg(long, default_value_t = 800)]
    pub height: usize,
    /// Input width for the backbone+FPN FLOPs.
    #[arg(long, default_value_t = 1333)]
    pub width: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The PyTorch checkpoint (zip format `torch.save`).
    pub input: PathBuf,
    /// The `.safetensors` file to write.
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Model weights (a `detect train` model, or torchvision-layout .pth/.safetensors).
    #[arg(long, required_unless_present = "random_init")]
    pub weights: Option<PathBuf>,
    /// Backbone architecture, when the weights do not carry it (required with --random-init).
    #[arg(long)]
    pub backbone: Option<String>,
    /// The .onnx file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// ONNX opset version (16 or 17).
    #[arg(long, default_value_t = crate::export::DEFAULT_OPSET)]
    pub opset: i64,
    /// Export seeded random weights instead of --weights (benchmarks, tests).
    #[arg(long, conflicts_with = "weights")]
    pub random_init: bool,
    /// With --random-init: classes including background.
    #[arg(long, default_value_t = 91)]
    pub num_classes: usize,
    /// With --random-init: the seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What `detect bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTask {
    /// Inference (`detect predict`'s model path) on a batch of noise images.
    Predict,
    /// Training steps: forward with the four losses, backward, SGD (momentum 0.9, weight
    /// decay 1e-4), the total loss read once per step.
    Train,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum)]
    pub task: BenchTask,
    #[arg(long, default_value = "resnext101_32x4d")]
    pub backbone: String,
    /// Images per batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[arg(long, default_value_t = 800)]
    pub height: usize,
    #[arg(long, default_value_t = 1333)]
    pub width: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, value_enum, default_value_t = Precision::Tf32)]
    pub precision: Precision,
    /// Write the (random, seed 0) weights to this `.safetensors` file under torchvision's
    /// names, for the reference side to load.
    #[arg(long)]
    pub weights_out: Option<PathBuf>,
    /// One more iteration after the timed ones, profiled per stage (as `--profile`).
    #[arg(long)]
    pub profile: bool,
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// The repository root (the checks read its test fixtures).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Also write one TSV row per check (name, PASS/FAIL, measured, limit) to this file.
    #[arg(long)]
    pub tsv: Option<PathBuf>,
}
