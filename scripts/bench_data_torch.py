"""torchvision's side of `examples/bench_data.rs`: images/second through decode + resize +
normalize (PIL decode, to_tensor, GeneralizedRCNNTransform in eval mode, batch of one, padded
to /32), on one core and with WORKERS processes (torch DataLoader workers, one thread each: how
torchvision's detection reference feeds its model).

    python scripts/bench_data_torch.py WORKERS MIN_SIZE MAX_SIZE FILE...

Prints one JSON line: {"single": images_per_s, "multi": images_per_s, "multi_threads": images_per_s}
("multi_threads": one process, torch intra-op threads = WORKERS, decode still single-threaded).
"""
import json
import sys
import time

import torch
from PIL import Image
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.transforms import functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class Images(torch.utils.data.Dataset):
    def __init__(self, files, min_size, max_size):
        self.files = files
        self.t = GeneralizedRCNNTransform(min_size, max_size, MEAN, STD).eval()

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            image = F.to_tensor(im.convert("RGB"))
        with torch.no_grad():
            out = self.t([image])[0].tensors
        return out.shape[-1]


def run_serial(ds):
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return len(ds) / (time.perf_counter() - start)


def init_worker(_):
    torch.set_num_threads(1)


def run_workers(ds, workers):
    loader = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=workers, worker_init_fn=init_worker, prefetch_factor=4
    )
    it = iter(loader)
    next(it)  # workers started and warm
    start = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - start)


def main():
    workers, min_size, max_size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ds = Images(sys.argv[4:], min_size, max_size)
    torch.set_num_threads(1)
    for i in range(min(8, len(ds))):  # warm-up
        ds[i]
    single = run_serial(ds)
    torch.set_num_threads(workers)
    multi_threads = run_serial(ds)
    torch.set_num_threads(1)
    multi = run_workers(ds, workers)
    print(json.dumps({"single": single, "multi": multi, "multi_threads": multi_threads}))


if __name__ == "__main__":
    main()
