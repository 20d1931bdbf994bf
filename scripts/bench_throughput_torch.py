"""torchvision's side of examples/bench_throughput.rs: predict throughput over image files,
PIL decode + to_tensor in a 2-worker DataLoader feeding torchvision's Faster R-CNN (random
weights: weights=None, weights_backbone=None), batch 1, f32, CPU.

    python scripts/bench_throughput_torch.py --backbone resnet50 --threads 2 IMAGE...

Prints one JSON line: {"images": n, "seconds": wall time of the timed pass, ...}. One image runs
through the model first (not timed); the timed pass starts when the DataLoader is created, so it
includes starting its workers, and ends after the last image's detections.

- resnet50: `fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`.
- resnext101_32x4d (torchvision has no such builder): the same model around torchvision's
  `ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4)` with `_resnet_fpn_extractor`,
  as `fasterrcnn_resnet50_fpn` builds it without pretrained weights (BatchNorm2d, all 5 stages
  trainable, 91 classes). In eval mode the batch norms are a per-channel affine either way.
"""
import argparse
import json
import time

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.transforms.functional import to_tensor


def build(name):
    if name == "resnet50":
        return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    if name == "resnext101_32x4d":
        body = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, norm_layer=nn.BatchNorm2d)
        return FasterRCNN(_resnet_fpn_extractor(body, trainable_layers=5), num_classes=91).eval()
    raise SystemExit(f"unknown backbone {name}")


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return to_tensor(Image.open(self.paths[i]).convert("RGB"))


def as_list(batch):
    return batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.backbone)
    detections = 0
    with torch.inference_mode():
        model([Files(args.images)[0]])  # warm-up, not timed
        t0 = time.perf_counter()
        loader = torch.utils.data.DataLoader(Files(args.images), batch_size=1, num_workers=args.workers,
                                             collate_fn=as_list)
        for images in loader:
            out = model(images)
            detections += len(out[0]["boxes"])
        seconds = time.perf_counter() - t0
    print(json.dumps({"images": len(args.images), "seconds": seconds, "detections": detections,
                      "threads": torch.get_num_threads(), "workers": args.workers,
                      "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
