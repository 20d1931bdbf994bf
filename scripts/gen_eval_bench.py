"""Generates a COCO-val-sized evaluation benchmark: ground truth and a results file.

    /work/venv/bin/python scripts/gen_eval_bench.py --out target/eval_bench

Writes OUT/gt.json (5,000 images, ~36,000 boxes over COCO's 80 category ids, ~1% crowd
regions, mask-like `area` values) and OUT/results.json (100 detections per image: jittered
ground truth, confusions and false positives, scores with ties), as COCO val2017 is in size.
Deterministic for a seed. Do not commit the output (~60 MB); it is regenerated in seconds.
Needs only the Python standard library.
"""
import argparse
import json
import os
import random

COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="target/eval_bench")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes-per-image", type=float, default=7.9)
    parser.add_argument("--dets-per-image", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    images, anns, dets = [], [], []
    # COCO's class imbalance, roughly: a few categories (person) dominate
    weights = [30.0 if c == 1 else rng.uniform(0.3, 3.0) for c in COCO_IDS]
    for i in range(args.images):
        image_id = 139 + 97 * i
        w, h = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375), (612, 612)])
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w, "height": h})
        n = min(60, int(rng.expovariate(1.0 / args.boxes_per_image)))
        boxes = []
        for _ in range(n):
            scale = rng.choice([0.02, 0.05, 0.1, 0.2, 0.4, 0.8])
            bw, bh = max(1.0, rng.uniform(0.3, 1.0) * scale * w), max(1.0, rng.uniform(0.3, 1.0) * scale * h)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            cat = rng.choices(COCO_IDS, weights)[0]
            box = [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)]
            crowd = 1 if rng.random() < 0.01 else 0
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": box,
                         "area": round(box[2] * box[3] * rng.uniform(0.45, 0.9), 4), "iscrowd": crowd,
                         "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
            boxes.append((box, cat))
        image_dets = []
        for box, cat in boxes:
            for _ in range(rng.choice([1, 1, 2, 3])):
                s = rng.choice([0.02, 0.05, 0.1, 0.2])
                x, y, bw, bh = box
                d = [round(x + rng.gauss(0, s * bw), 2), round(y + rng.gauss(0, s * bh), 2),
                     round(bw * max(0.1, 1 + rng.gauss(0, s)), 2), round(bh * max(0.1, 1 + rng.gauss(0, s)), 2)]
                c = cat if rng.random() < 0.8 else rng.choice(COCO_IDS)
                image_dets.append({"image_id": image_id, "category_id": c, "bbox": d,
                                   "score": round(rng.uniform(0.3, 1.0), 3)})
        while len(image_dets) < args.dets_per_image:
            bw, bh = rng.uniform(4, w / 2), rng.uniform(4, h / 2)
            image_dets.append({"image_id": image_id, "category_id": rng.choices(COCO_IDS, weights)[0],
                               "bbox": [round(rng.uniform(0, w - bw), 2), round(rng.uniform(0, h - bh), 2),
                                        round(bw, 2), round(bh, 2)],
                               "score": round(rng.uniform(0.0, 0.6), 3)})
        dets.extend(image_dets[: args.dets_per_image])
    cats = [{"id": c, "name": f"category_{c:02d}", "supercategory": "thing"} for c in COCO_IDS]
    with open(os.path.join(args.out, "gt.json"), "w") as f:
        json.dump({"info": {"description": "generated benchmark"}, "images": images,
                   "annotations": anns, "categories": cats}, f)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dets, f)
    print(f"{len(images)} images, {len(anns)} boxes, {len(dets)} detections -> {args.out}")


if __name__ == "__main__":
    main()
