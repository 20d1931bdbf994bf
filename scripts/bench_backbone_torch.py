"""torchvision's side of examples/bench_backbone.rs: resnext101_32x4d (or any
resnext{depth}_{C}x{d}d / resnet{depth}) backbone + FPN forward, batch 1, f32, CPU, random weights.

    python scripts/bench_backbone_torch.py --backbone resnext101_32x4d --height 800 --width 1216 \
        --iters 2 --threads 2

Prints one JSON line: {"seconds": [per-iteration wall times], "threads": n, "torch": version}.
With `--serve` (examples/common/reference.rs) it times one repetition per `run` line on stdin
instead (scripts/bench_serve.py).
torchvision has no resnext101_32x4d constructor; the ResNet class is built directly with
groups/width_per_group, FrozenBatchNorm2d, and wrapped like `resnet_fpn_backbone`
(trainable_layers 3, LastLevelMaxPool, 256 channels).
"""
import argparse
import json
import re
import time

import torch
import torchvision
from bench_serve import serve
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import FrozenBatchNorm2d

LAYERS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def resnet_body(name):
    """torchvision's ResNet for `resnet{depth}` / `resnext{depth}_{C}x{d}d`, FrozenBatchNorm2d,
    random weights (shared by the bench_*_torch.py scripts and profile_backbone_torch.py)."""
    m = re.fullmatch(r"resnet(\d+)", name) or re.fullmatch(r"resnext(\d+)_(\d+)x(\d+)d", name)
    if m is None:
        raise SystemExit(f"unknown backbone {name}")
    depth = int(m.group(1))
    groups, width = (int(m.group(2)), int(m.group(3))) if m.lastindex == 3 else (1, 64)
    return ResNet(Bottleneck, LAYERS[depth], groups=groups, width_per_group=width, norm_layer=FrozenBatchNorm2d)


def build(name):
    return _resnet_fpn_extractor(resnet_body(name), trainable_layers=3).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1216)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    ap.add_argument("--serve", action="store_true", help="time one run per stdin line")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.backbone)
    x = torch.randn(1, 3, args.height, args.width)
    times = []
    with torch.inference_mode():
        model(x)  # warm-up
        if args.serve:
            serve(lambda: model(x), {"threads": torch.get_num_threads(), "torch": torch.__version__,
                                     "torchvision": torchvision.__version__})
            return
        for _ in range(args.iters):
            t0 = time.perf_counter()
            out = model(x)
            times.append(time.perf_counter() - t0)
    assert len(out) == 5
    print(json.dumps({"seconds": times, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
