"""torchvision's side of examples/bench_predict.rs: `detect predict`-equivalent inference with
torchvision's `FasterRCNN` (transform → backbone + FPN → RPN → RoI heads → postprocess) on one
HEIGHT x WIDTH image, batch 1, f32, CPU, random weights, 91 classes.

    python scripts/bench_predict_torch.py --backbone resnext101_32x4d --height 800 --width 1333 \
        --iters 1 --threads 2

Prints one JSON line: {"seconds": [per-iteration wall times], "detections": n, "threads": n, ...}.
With `--serve` (examples/common/reference.rs) it times one repetition per `run` line on stdin
instead (scripts/bench_serve.py).
The image is uniform noise in [0, 1] of exactly HEIGHT x WIDTH (800x1333 is already the
transform's output size, so the resize keeps it). The backbone is torchvision's `ResNet` with
groups / width_per_group and FrozenBatchNorm2d, wrapped like `resnet_fpn_backbone`
(trainable_layers 3, LastLevelMaxPool, 256 channels); everything else is `FasterRCNN`'s default.
"""
import argparse
import json
import time

import torch
import torchvision
from bench_backbone_torch import resnet_body  # same folder
from bench_serve import serve
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

def build(name):
    return FasterRCNN(_resnet_fpn_extractor(resnet_body(name), trainable_layers=3), num_classes=91).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1333)
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    ap.add_argument("--serve", action="store_true", help="time one run per stdin line")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.backbone)
    image = torch.rand(3, args.height, args.width)
    times = []
    with torch.inference_mode():
        out = model([image])  # warm-up
        if args.serve:
            serve(lambda: model([image]), {"detections": len(out[0]["boxes"]),
                                           "threads": torch.get_num_threads(),
                                           "torch": torch.__version__,
                                           "torchvision": torchvision.__version__})
            return
        for _ in range(args.iters):
            t0 = time.perf_counter()
            out = model([image])
            times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": times, "detections": len(out[0]["boxes"]),
                      "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
