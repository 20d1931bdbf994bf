"""Shared by the bench_*_torch.py scripts: the `--serve` protocol of examples/common/reference.rs.

After the model is built and warmed up, `serve(step, info)` prints `info` as one JSON line, then
times `step()` once per `run` line read on stdin and answers each with `{"seconds": s}`; it
returns at end of input. The Rust side alternates these repetitions with its own, so both are
timed under the same machine load.
"""
import json
import sys
import time


def serve(step, info):
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        step()
        print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
