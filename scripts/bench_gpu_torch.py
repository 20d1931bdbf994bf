"""torchvision's side of scripts/gpu_bench.py (issue 12): the same benchmark as `detect bench`,
with the same weights, as torchvision users run it on a GPU.

    python scripts/bench_gpu_torch.py --task train --backbone resnext101_32x4d --batch 2 \
        --precision bf16 --device cuda --weights w.safetensors

- Model: torchvision's `FasterRCNN` on `_resnet_fpn_extractor(ResNet, trainable_layers=3)`
  (FrozenBatchNorm2d, 91 classes), the weights `detect bench --weights-out` wrote (strict load:
  every key, every shape). The transform keeps HEIGHT x WIDTH images as they are.
- Settings, as the issue asks: `cudnn.benchmark = True`; TF32 on for convolutions, off for
  matmuls (`--precision fp32`: off for both); `--precision bf16` runs the forward (and the losses)
  under `torch.autocast("cuda", dtype=torch.bfloat16)`, backward and SGD outside, as
  torchvision's reference scripts with `--amp` (bf16 needs no GradScaler).
- `--task predict`: `model.eval()` under `torch.inference_mode()`, a batch of noise images.
  `--task train`: three ground-truth boxes per image (the ones of `detect bench`), forward with
  the losses, backward, SGD (momentum 0.9, weight decay 1e-4), the total loss read once.
- WARMUP untimed iterations, then ITERS timed ones, each ending with `torch.cuda.synchronize()`.

Prints one JSON line with the same fields as `detect bench` ("side": "torchvision").
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_backbone_torch import resnet_body  # noqa: E402  (same folder)

# xyxy in an 800x1333 frame, COCO labels: the same as src/commands/bench.rs.
BOXES = [[100.0, 120.0, 500.0, 600.0], [700.0, 200.0, 1100.0, 500.0], [300.0, 550.0, 420.0, 760.0]]
LABELS = [1, 18, 62]

DTYPES = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16, "F16": torch.float16,
          "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


def read_safetensors(path):
    """The tensors of a .safetensors file (8-byte header length, JSON header, raw data), without
    the safetensors package (the GPU machine may not have it)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=["predict", "train"], required=True)
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1333)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="tf32")
    ap.add_argument("--weights", required=True, help="the .safetensors of detect bench --weights-out")
    args = ap.parse_args()

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = args.precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = False
    h, w = args.height, args.width
    model = FasterRCNN(_resnet_fpn_extractor(resnet_body(args.backbone), trainable_layers=3),
                       num_classes=91, min_size=min(h, w), max_size=max(h, w))
    state = read_safetensors(args.weights)
    model.load_state_dict(state, strict=True)
    model.to(dev)
    autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else torch.autocast(dev.type, enabled=False))
    images = list(torch.rand(args.batch, 3, h, w, device=dev))
    sy, sx = h / 800.0, w / 1333.0
    boxes = torch.tensor([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in BOXES], device=dev)
    targets = [{"boxes": boxes, "labels": torch.tensor(LABELS, device=dev)}] * args.batch

    def sync():
        if cuda:
            torch.cuda.synchronize()

    if args.task == "predict":
        model.eval()

        def iteration():
            with torch.inference_mode(), autocast:
                model(images)
            sync()
    else:
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def iteration():
            with autocast:
                losses = model(images, targets)
                total = sum(losses.values())
            value = total.item()  # the one scalar read per step, as ours
            if value != value:
                raise SystemExit("non-finite loss")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            sync()

    seconds = []
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        iteration()
        if i >= args.warmup:
            seconds.append(time.perf_counter() - t0)
    median = sorted(seconds)[len(seconds) // 2]  # the upper middle, as detect bench
    print(json.dumps({
        "side": "torchvision", "task": args.task, "backbone": args.backbone, "batch": args.batch,
        "height": h, "width": w, "precision": args.precision, "device": args.device,
        "seconds": seconds, "median_s": median, "images_per_s": args.batch / median,
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
    }))


if __name__ == "__main__":
    main()
