"""ONNX Runtime's CPU latency for an exported detector, beside ours and torchvision's
(`examples/bench_predict.rs` with `DETECT_BENCH_ONNX=/tmp/x101.onnx` runs it with `--serve`,
interleaved with ours).

    detect export --random-init --backbone resnext101_32x4d --output /tmp/x101.onnx
    $DETECT_PYTHON scripts/bench_onnx.py /tmp/x101.onnx [ITERS] [THREADS] [--serve]

One 800x1333 uniform-noise image (the transform keeps that size), batch 1, float32, CPU
execution provider with THREADS intra-op threads (default 2, candle's count on the 2-core
machine), one warm-up, then the median of ITERS runs (default 3). Prints JSON.
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from bench_serve import serve


def main():
    serving = "--serve" in sys.argv
    argv = [a for a in sys.argv if a != "--serve"]
    path = argv[1]
    iters = int(argv[2]) if len(argv) > 2 else 3
    threads = int(argv[3]) if len(argv) > 3 else 2
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    image = np.random.RandomState(0).randint(0, 256, (1, 3, 800, 1333)).astype(np.float32) / 255
    detections = len(session.run(None, {"image": image})[1])  # warm-up
    if serving:
        serve(lambda: session.run(None, {"image": image}),
              {"onnxruntime": ort.__version__, "threads": threads, "detections": detections})
        return
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        detections = len(session.run(None, {"image": image})[1])
        times.append(time.perf_counter() - t0)
    print(json.dumps({"onnxruntime": ort.__version__, "threads": threads, "iters": iters,
                      "median_seconds": statistics.median(times), "times": times,
                      "detections": detections}))


if __name__ == "__main__":
    main()
