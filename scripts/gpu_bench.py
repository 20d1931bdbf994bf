"""The GPU benchmarks of issue 12: ours (`detect bench`) against torchvision's CUDA model
(scripts/bench_gpu_torch.py) with the same weights, in the same run, one process per side and
row, the side that goes first alternating from row to row. Run by scripts/gpu-run.sh (step 7);
standalone:

    python3 scripts/gpu_bench.py DETECT_BINARY OUT_DIR [--device cuda] [--quick]

Rows (X101-32x4d-FPN at 800x1333 unless --backbone/--height/--width say otherwise), each in
`tf32` (TF32 convolutions, f32 matmuls: PyTorch's defaults) and `bf16` (autocast):
- inference latency at batch 1; inference images/s at batch 8;
- training step s/iter at batch 2 and 8 (SGD; median of --iters after --warmup).
Each side's peak GPU memory is the largest `used_memory` NVML reports for a process while that
side runs (`nvidia-smi --query-compute-apps ... -lms 100`: sampled, so a peak shorter than
100 ms can be missed, on both sides alike). A row passes when ours is at most 1.0x
torchvision's time and at most 1.0x its peak memory (the issue's goal). Ours runs one more,
profiled iteration after the timed ones (stage times + transfers); the slowest row's profile
is a row of its own.

Writes OUT_DIR/bench.tsv (name, PASS/FAIL, measured, limit: the rows of gpu-report.md),
OUT_DIR/bench.jsonl (every side's JSON line) and OUT_DIR/bench.log. Exit 0 when every row
passes, 1 otherwise, 2 on bad arguments. `--quick` is the plumbing check without a GPU
(resnet50, 160x224, 1 warm-up + 2 iterations, CPU, no memory column).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class MemoryPoller:
    """The largest per-process `used_memory` (MiB) NVML reports while running."""

    def __init__(self, enabled):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.peak_mib = None
        self.proc = None
        self.thread = None

    def __enter__(self):
        if not self.enabled:
            return self
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits",
             "-lms", "100"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def read():
            for line in self.proc.stdout:
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[1].isdigit():
                    v = int(parts[1])
                    self.peak_mib = v if self.peak_mib is None else max(self.peak_mib, v)

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            time.sleep(0.3)  # one more sample after the side exits its last iteration
            self.proc.terminate()
            self.proc.wait()
            self.thread.join(timeout=2)


def failure(stderr):
    """The line of a failed run's stderr that says why: its first `Error`/`error` line (a
    backtrace may follow it), else its last line."""
    lines = [l.strip() for l in stderr.strip().splitlines() if l.strip()]
    said = [l for l in lines if l.lower().startswith(("error", "hint", "traceback"))]
    return (said or lines or ["(no output)"])[0 if said else -1]


def run_side(cmd, timeout, log, poll):
    """Runs one side; returns (its JSON line or None, peak MiB or None, error or None)."""
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    with MemoryPoller(poll) as mem:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, mem.peak_mib, f"over {timeout} s"
    log.write(p.stdout + p.stderr + "\n")
    log.flush()
    if p.returncode != 0:
        return None, mem.peak_mib, f"exit {p.returncode}: {failure(p.stderr)}"
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return None, mem.peak_mib, "no JSON line"
    return json.loads(lines[-1]), mem.peak_mib, None


def ops_rows(args, log, start):
    """examples/bench_ops.rs on the device (5 interleaved pairs per op against torchvision.ops):
    one row per op from its markdown table."""
    limit = "ours <= 1.00x torchvision"
    left = args.budget - (time.monotonic() - start)
    if args.budget > 0 and left < max(60, args.timeout) + 5:
        return [("bench: ops (bench_ops)", "FAIL", f"not run: {left:.0f} s of the budget left", limit)]
    if not os.path.isfile(args.bench_ops):
        return [("bench: ops (bench_ops)", "FAIL", f"no binary {args.bench_ops}", limit)]
    env = dict(os.environ, DETECT_PYTHON=args.python, DETECT_SCRIPTS=HERE,
               DETECT_BENCH_DEVICE="cuda" if args.device.startswith("cuda") else "cpu")
    cmd = [args.bench_ops, "5"]
    log.write("$ " + " ".join(cmd) + "\n")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=max(60, args.timeout))
    except subprocess.TimeoutExpired:
        return [("bench: ops (bench_ops)", "FAIL", f"over {max(60, args.timeout)} s", limit)]
    log.write(p.stdout + p.stderr + "\n")
    if p.returncode != 0:
        return [("bench: ops (bench_ops)", "FAIL", f"exit {p.returncode}: {failure(p.stderr)}", limit)]
    rows = []
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("op", "---") or cells[0].startswith("-"):
            continue
        name, ours_ms, torch_ms, ratio, spread = cells
        try:
            r = float(ratio)
        except ValueError:
            continue
        rows.append((f"bench: op {name} ({env['DETECT_BENCH_DEVICE']})", "PASS" if r <= 1.0 else "FAIL",
                     f"ours {ours_ms} ms vs torchvision {torch_ms} ms: {r:.2f}x (pairs {spread})", limit))
    return rows or [("bench: ops (bench_ops)", "FAIL", "no op rows in its output (see bench.log)", limit)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("detect")
    ap.add_argument("out")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backbone", default="resnext101_32x4d")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1333)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=100, help="seconds per side and row")
    ap.add_argument("--budget", type=int, default=0,
                    help="seconds for all rows (0: no limit); a row that could not finish within "
                         "it (2 x --timeout) is reported as not run")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--bench-ops", default="",
                    help="the bench_ops example binary (built for CUDA by gpu-build.sh): the ops "
                         "rows, after the model rows, if 60 s of the budget are left")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.device, args.backbone, args.height, args.width = "cpu", "resnet50", 160, 224
        args.warmup, args.iters = 1, 2
    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, f"bench-{args.backbone}.safetensors")
    poll = args.device.startswith("cuda")

    # (task, batch, precision), most wanted first (a budget cuts the tail).
    rows = [(task, batch, precision) for batch_pair in [(1, 2), (8, 8)]
            for precision in ["tf32", "bf16"]
            for task, batch in zip(["predict", "train"], batch_pair)]
    if args.quick:
        rows = [("predict", 1, "tf32"), ("train", 2, "bf16")]

    tsv, jsonl = [], []

    def flush():
        # After every row, so that a run cut short keeps the rows it finished.
        with open(os.path.join(args.out, "bench.tsv"), "w") as f:
            for r in tsv:
                f.write("\t".join(x.replace("\t", " ") for x in r) + "\n")

    slowest = None  # (ratio, name, profile)
    log = open(os.path.join(args.out, "bench.log"), "w")
    start = time.monotonic()
    for k, (task, batch, precision) in enumerate(rows):
        what = "latency" if (task, batch) == ("predict", 1) else ("images/s" if task == "predict" else "s/iter")
        name = f"bench: {task} batch {batch} {precision} ({what}), {args.backbone} {args.height}x{args.width}"
        limit = "ours <= 1.00x torchvision in time and peak memory"
        left = args.budget - (time.monotonic() - start)
        if args.budget > 0 and left < 2 * args.timeout:
            tsv.append((name, "FAIL", f"not run: {left:.0f} s of the {args.budget} s budget left", limit))
            continue
        common = ["--task", task, "--backbone", args.backbone, "--batch", str(batch),
                  "--height", str(args.height), "--width", str(args.width),
                  "--warmup", str(args.warmup), "--iters", str(args.iters),
                  "--device", args.device, "--precision", precision]
        ours = [args.detect, "bench", *common, "--profile"]
        if k == 0:
            ours += ["--weights-out", weights]  # the first row goes ours-first and writes them
        torch_cmd = [args.python, os.path.join(HERE, "bench_gpu_torch.py"), *common,
                     "--weights", weights]
        order = [("ours", ours), ("torch", torch_cmd)]
        if k % 2 == 1:
            order.reverse()
        got = {}
        for side, cmd in order:
            got[side] = run_side(cmd, args.timeout, log, poll)
            if got[side][0]:
                jsonl.append(json.dumps({**got[side][0], "peak_mib": got[side][1]}))
        errors = [f"{s}: {got[s][2]}" for s in ("ours", "torch") if got[s][2]]
        if errors:
            tsv.append((name, "FAIL", "; ".join(errors), limit))
            continue
        o, t = got["ours"][0], got["torch"][0]
        ratio = o["median_s"] / t["median_s"]
        if task == "predict" and batch > 1:
            timing = f"ours {o['images_per_s']:.2f} vs torchvision {t['images_per_s']:.2f} images/s"
        else:
            timing = f"ours {o['median_s']:.4f} vs torchvision {t['median_s']:.4f} s"
        measured = f"{timing}: time {ratio:.2f}x"
        mem_ok = True
        om, tm = got["ours"][1], got["torch"][1]
        if om is not None and tm is not None:
            mem_ratio = om / tm
            mem_ok = mem_ratio <= 1.0
            measured += f"; peak memory {om / 1024:.2f} vs {tm / 1024:.2f} GiB: {mem_ratio:.2f}x"
        elif poll:
            measured += "; peak memory not read (nvidia-smi gave no sample)"
            mem_ok = False
        tsv.append((name, "PASS" if ratio <= 1.0 and mem_ok else "FAIL", measured, limit))
        flush()
        if slowest is None or ratio > slowest[0]:
            slowest = (ratio, name, o.get("profile"))
    if args.bench_ops:
        tsv += ops_rows(args, log, start)
    if slowest is not None:
        tsv.append((f"bench: our per-stage profile of the slowest row ({slowest[1]}, {slowest[0]:.2f}x)",
                    "PASS", slowest[2] or "(none)", "information"))
    flush()
    with open(os.path.join(args.out, "bench.jsonl"), "w") as f:
        f.write("".join(l + "\n" for l in jsonl))
    for r in tsv:
        print(f"{r[1]} {r[0]}: {r[2]} ({r[3]})")
    return 0 if all(r[1] == "PASS" for r in tsv) else 1


if __name__ == "__main__":
    sys.exit(main())
