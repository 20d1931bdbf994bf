"""torchvision's side of examples/bench_train.rs: one Faster R-CNN training step (forward with
the four losses, backward, SGD momentum 0.9 / weight decay 1e-4) for a resnext{depth}_{C}x{d}d
FPN detector (91 classes, random weights, trainable_layers 3), batch 1, f32, CPU.

    python scripts/bench_train_torch.py --backbone resnext101_32x4d --height 800 --width 1333 \
        --iters 2 --threads 2

The image is HEIGHTxWIDTH random pixels with the three ground-truth boxes of bench_train.rs;
min_size/max_size are set so the transform keeps that size. Prints one JSON line:
{"seconds": [per-step wall times after one warm-up step], "threads": n, "torch": version}.
`--batch N` trains on N copies of the image. With `--serve` (examples/common/reference.rs) it
times one step per `run` line on stdin instead (scripts/bench_serve.py).
"""
import argparse
import json
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

from bench_backbone_torch import resnet_body  # noqa: E402  (same folder)
from bench_serve import serve  # noqa: E402

# xyxy in image pixels, labels (COCO ids); the same as examples/bench_train.rs.
BOXES = [[100.0, 120.0, 500.0, 600.0], [700.0, 200.0, 1100.0, 500.0], [300.0, 550.0, 420.0, 760.0]]
LABELS = [1, 18, 62]


def build(name, height, width):
    backbone = _resnet_fpn_extractor(resnet_body(name), trainable_layers=3)
    return FasterRCNN(backbone, num_classes=91, min_size=min(height, width), max_size=max(height, width))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1333)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--serve", action="store_true", help="time one step per stdin line")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.backbone, args.height, args.width).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    image = torch.rand(3, args.height, args.width)
    target = {"boxes": torch.tensor(BOXES), "labels": torch.tensor(LABELS)}

    def step():
        losses = model([image] * args.batch, [target] * args.batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    step()  # warm-up
    if args.serve:
        serve(step, {"threads": torch.get_num_threads(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__})
        return
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": times, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
