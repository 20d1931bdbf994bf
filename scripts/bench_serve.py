"""Shared by the bench_*_torch.py scripts: the `--serve` protocol of examples/common/reference.rs.

After the model is built and warmed up, `serve(steps, info)` prints `info` as one JSON line, then
for each line read on stdin runs the step of that name once (`run` for a script with one step,
a callable) and answers `{"seconds": s}`; it returns at end of input. `sync` (e.g.
`torch.cuda.synchronize`) is called before and after each timed step. The Rust side alternates
these repetitions with its own, so both are timed under the same machine load.
"""
import json
import sys
import time


def serve(steps, info, sync=lambda: None):
    if callable(steps):
        steps = {"run": steps}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        step = steps.get(line.strip())
        if step is None:
            print(json.dumps({"error": f"unknown step {line.strip()!r}"}), flush=True)
            continue
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
