"""The Python side of `examples/bench_eval.rs`: one COCO box evaluation with pycocotools or
faster-coco-eval, timed, in this process alone so its peak memory is its own.

    python scripts/bench_eval_py.py {pycocotools,faster_coco_eval} GT.json RESULTS.json

Prints one JSON line: {"tool", "load_s", "eval_s", "total_s", "peak_rss_mb", "stats"}
(load = reading both files and building the index; eval = evaluate + accumulate + summarize).
"""
import contextlib
import io
import json
import resource
import sys
import time


def main():
    tool, gt_path, dt_path = sys.argv[1:4]
    if tool == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    elif tool == "faster_coco_eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    else:
        raise SystemExit(f"unknown tool {tool}")
    quiet = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(quiet):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        loaded = time.perf_counter()
        ev = Eval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    end = time.perf_counter()
    print(json.dumps({
        "tool": tool,
        "load_s": loaded - start,
        "eval_s": end - loaded,
        "total_s": end - start,
        # Linux reports ru_maxrss in KiB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stats": [float(s) for s in ev.stats],
    }))


if __name__ == "__main__":
    main()
