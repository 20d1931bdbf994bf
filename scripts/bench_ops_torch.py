"""torchvision.ops side of `cargo run --release --example bench_ops` (run by it; not alone).

Reads the inputs the example saved (safetensors), times the same ops with the same
methodology (warm-up, then the median of `reps` runs) and prints one JSON object of
milliseconds on stdout.  Usage: bench_ops_torch.py INPUTS.safetensors THREADS [cpu|cuda]
"""

import json
import sys
import time

import torch
import torchvision
from safetensors.torch import load_file
from torchvision.ops import MultiScaleRoIAlign


def median_ms(f, reps):
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    f()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


DEVICE = sys.argv[3] if len(sys.argv) > 3 else "cpu"


def main():
    t = {k: v.to(DEVICE) for k, v in load_file(sys.argv[1]).items()}
    torch.set_num_threads(int(sys.argv[2]))
    out = {}
    for n in (1000, 5000, 20000):
        b, s = t[f"nms{n}_boxes"], t[f"nms{n}_scores"]
        out[f"nms {n}"] = median_ms(lambda: torchvision.ops.nms(b, s, 0.7), 10)
    b, s, c = t["batched_boxes"], t["batched_scores"], t["batched_idxs"]
    out["batched_nms 20000/80"] = median_ms(lambda: torchvision.ops.batched_nms(b, s, c, 0.5), 10)

    x, rois, g = t["p2"], t["rois"], t["grad"]
    out["roi_align fwd"] = median_ms(lambda: torchvision.ops.roi_align(x, rois, (7, 7), 0.25, 2, False), 5)

    def fwd_bwd():
        xg = x.detach().requires_grad_(True)
        (torchvision.ops.roi_align(xg, rois, (7, 7), 0.25, 2, False) * g).sum().backward()

    out["roi_align fwd+bwd"] = median_ms(fwd_bwd, 5)

    feats = {str(i): t[f"p{i + 2}"] for i in range(4)}
    boxes = [t["boxes"]]
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    out["MultiScaleRoiAlign"] = median_ms(lambda: pooler(feats, boxes, [(800, 1344)]), 5)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
