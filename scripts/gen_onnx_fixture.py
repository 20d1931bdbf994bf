"""Fixture for tests/onnx_export.rs: ONNX Runtime's outputs on the exported detectors.

    python3 -m venv ../venv-onnx && ../venv-onnx/bin/pip install onnx onnxruntime numpy pillow
    ../venv-onnx/bin/python scripts/gen_onnx_fixture.py

The shapes model is trained once (seed 0) and committed:

    cargo run --release -- train --dataset shapes --iters 400 --output /tmp/shapes400
    cp /tmp/shapes400/model_final.safetensors tests/fixtures/onnx/shapes_trained.safetensors

Exports each fixture model through the Rust exporter (`cargo test --test onnx_export
write_onnx_exports -- --ignored`), runs `onnx.checker` (full check, with shape inference),
records each file's SHA-256, runs the model in ONNX Runtime (CPU) on the committed images and
writes boxes, scores and labels to tests/fixtures/onnx/outputs.json. Images are fed as
float32 RGB in [0, 1] (`u8 / 255`), what the exported graph expects.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")

# name -> [(image, expect_none)]; images are repository-relative.
MODELS = {
    "tiny_random": [
        ("tests/fixtures/model/image0.png", False),  # 240x320
        ("tests/fixtures/model/image1.png", False),  # 360x200
        ("tests/fixtures/onnx/noise.png", None),  # 90x130 seeded noise
    ],
    "tiny_no_detections": [
        ("tests/fixtures/model/image0.png", True),
        ("tests/fixtures/onnx/noise.png", True),
    ],
    # The same network at the lowest opset the exporter writes.
    "tiny_random_opset16": [
        ("tests/fixtures/model/image0.png", False),
        ("tests/fixtures/model/image1.png", False),
    ],
    # `detect train --dataset shapes --iters 400`; its images are rendered by write_onnx_exports.
    "shapes_trained": [
        ("tests/fixtures/onnx/shapes_val0.png", False),  # 160x160
        ("tests/fixtures/onnx/shapes_val1.png", False),
        ("tests/fixtures/model/image0.png", None),  # 240x320, not a shapes image
    ],
}


def make_images():
    # A uniform image would tie every interior anchor's score: the order of exact ties is
    # not specified by ONNX (TopK, NonMaxSuppression), so the fixture avoids them.
    path = os.path.join(OUT, "noise.png")
    if not os.path.exists(path):
        pixels = np.random.RandomState(0).randint(0, 256, (90, 130, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(path)


def load_image(path):
    pixels = np.asarray(Image.open(os.path.join(ROOT, path)).convert("RGB"), dtype=np.uint8)
    x = pixels.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # [1, 3, H, W]


def main():
    os.makedirs(OUT, exist_ok=True)
    make_images()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DETECT_ONNX_OUT=tmp)
        subprocess.run(
            ["cargo", "test", "--workspace", "--test", "onnx_export", "write_onnx_exports", "--", "--ignored"],
            cwd=ROOT, env=env, check=True)
        fixture = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "models": {}}
        for name, images in MODELS.items():
            path = os.path.join(tmp, name + ".onnx")
            data = open(path, "rb").read()
            onnx.checker.check_model(path, full_check=True)
            model = onnx.load(path)
            meta = {p.key: p.value for p in model.metadata_props}
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            runs = []
            for image, expect_none in images:
                boxes, scores, labels = session.run(None, {"image": load_image(image)})
                print(f"{name} {image}: {len(scores)} detections", file=sys.stderr)
                if expect_none is None:
                    expect_none = False
                assert expect_none == (len(scores) == 0), (name, image, len(scores))
                runs.append({
                    "image": image,
                    "expect_none": bool(expect_none),
                    "boxes": boxes.astype(float).tolist(),
                    "scores": scores.astype(float).tolist(),
                    "labels": labels.astype(int).tolist(),
                })
            fixture["models"][name] = {
                "opset": [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")][0],
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "metadata_props": meta,
                "images": runs,
            }
    with open(os.path.join(OUT, "outputs.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
