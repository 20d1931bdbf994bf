"""torchvision's side of backbones/examples/profile_backbone.rs: the backbone + FPN forward
(batch 1, f32, CPU, random weights, FrozenBatchNorm2d) timed per stage: stem, layer1..4, fpn.

    $DETECT_PYTHON backbones/examples/profile_backbone_torch.py --backbone resnext101_32x4d \
        --height 800 --width 1216 --iters 3 --threads 2

Prints one JSON line: {"stem": [seconds per iteration], "layer1": [...], ..., "fpn": [...],
"total": [...]}. The model is built as scripts/bench_backbone_torch.py builds it.
"""
import argparse
import os
import sys
import json
import time
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from bench_backbone_torch import build  # noqa: E402  (the model bench_backbone times)

def forward_timed(model, x):
    """The model's forward split at the stage boundaries, each part timed."""
    body, times = model.body, {}
    t = time.perf_counter()
    y = body.maxpool(body.relu(body.bn1(body.conv1(x))))
    times["stem"] = time.perf_counter() - t
    feats = OrderedDict()
    for i in range(1, 5):
        t = time.perf_counter()
        y = getattr(body, f"layer{i}")(y)
        times[f"layer{i}"] = time.perf_counter() - t
        feats[str(i - 1)] = y
    t = time.perf_counter()
    out = model.fpn(feats)
    times["fpn"] = time.perf_counter() - t
    assert len(out) == 5
    times["total"] = sum(times.values())
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1216)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.backbone)
    x = torch.randn(1, 3, args.height, args.width)
    result = {}
    with torch.inference_mode():
        forward_timed(model, x)  # warm-up
        for _ in range(args.iters):
            for k, v in forward_timed(model, x).items():
                result.setdefault(k, []).append(v)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
