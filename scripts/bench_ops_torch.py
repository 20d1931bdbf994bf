"""torchvision.ops side of `cargo run --release --example bench_ops` (started by it; not alone).

A persistent child: it loads the inputs the example saved (a safetensors file, read here with
the standard library so that only torch and torchvision are needed), then serves the ops by
name (scripts/bench_serve.py: one JSON line when ready, then for each line `OP` on stdin one
repetition of that op and `{"seconds": s}`). The example sends one request per repetition,
interleaved with its own runs (ours, torchvision, ours, ...).
Usage: bench_ops_torch.py INPUTS.safetensors THREADS [cpu|cuda] --serve
"""

import json
import struct
import sys

import torch
import torchvision
from bench_serve import serve
from torchvision.ops import MultiScaleRoIAlign

DTYPES = {"F32": torch.float32, "I64": torch.int64, "U32": torch.int32}


def load_safetensors(path):
    """name -> tensor, from the safetensors layout: u64 header size, JSON header, raw data."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[meta["dtype"]])
        out[name] = t.reshape(meta["shape"])
    return out


def ops(t):
    """The benchmarked ops by name, each a function running one repetition."""
    nms = torchvision.ops.nms
    out = {}
    for n in (1000, 5000, 20000):
        b, s = t[f"nms{n}_boxes"], t[f"nms{n}_scores"]
        out[f"nms {n}"] = lambda b=b, s=s: nms(b, s, 0.7)
    b, s, c = t["batched_boxes"], t["batched_scores"], t["batched_idxs"]
    out["batched_nms 20000/80"] = lambda: torchvision.ops.batched_nms(b, s, c, 0.5)

    x, rois, g = t["p2"], t["rois"], t["grad"]
    out["roi_align fwd"] = lambda: torchvision.ops.roi_align(x, rois, (7, 7), 0.25, 2, False)

    def roi_align_fwd_bwd():
        xg = x.detach().requires_grad_(True)
        (torchvision.ops.roi_align(xg, rois, (7, 7), 0.25, 2, False) * g).sum().backward()

    out["roi_align fwd+bwd"] = roi_align_fwd_bwd

    levels = [t[f"p{i + 2}"] for i in range(4)]
    boxes = [t["boxes"]]
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    feats = {str(i): level for i, level in enumerate(levels)}
    out["MultiScaleRoiAlign fwd"] = lambda: pooler(feats, boxes, [(800, 1344)])

    def multi_scale_fwd_bwd():
        leaves = {str(i): level.detach().requires_grad_(True) for i, level in enumerate(levels)}
        (pooler(leaves, boxes, [(800, 1344)]) * g).sum().backward()

    out["MultiScaleRoiAlign fwd+bwd"] = multi_scale_fwd_bwd
    return out


def main():
    device = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "--serve" else "cpu"
    torch.set_num_threads(int(sys.argv[2]))
    t = {k: v.to(device) for k, v in load_safetensors(sys.argv[1]).items()}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    serve(ops(t), {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__},
          sync)


if __name__ == "__main__":
    main()
