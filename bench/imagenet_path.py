"""Images/s of the ImageNet-style training data path: (a) the project's (``loader.BatchStream`` with
``--augment rrc_flip``: JPEGs decoded by torchvision's decoder in DataLoader workers, random-resized crop and flip
on uint8 tensors, normalisation on whole batches) against (b) ``torchvision.datasets.ImageFolder`` with PIL and
the same transforms (RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize), both through a DataLoader
with the same workers and batch size, on generated photograph-sized JPEGs.  Prints both rates and a/b, measured in
this one run (rounds interleaved, the best of each kept).

    python bench/imagenet_path.py --images 2000 --workers 2
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loader import BatchStream, scan_split  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_photos(root, count, classes=10, size=(500, 375), seed=0):
    """``count`` JPEGs of ``size`` (smooth colour fields with noise, so they compress like photographs)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    for index in range(count):
        folder = root / f"{index % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(0, 255, 3)
        slope = rng.normal(0, 0.3, (3, 2))
        pixels = base + x[..., None] * slope[:, 0] + y[..., None] * slope[:, 1] + rng.normal(0, 12, (height, width, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{index:05d}.jpg", quality=90)


def rate(batches, limit):
    """Images/s over up to ``limit`` batches after one untimed batch (workers starting)."""
    seen, started = 0, None
    for index, batch in enumerate(batches):
        if index == 1:
            started, seen = time.perf_counter(), 0
        seen += len(batch[1])
        if index >= limit:
            break
    return seen / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batchsize", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke test: few images, one round")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.batchsize = 48, 1, 16
    from torchvision import datasets, transforms

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "train"
        make_photos(root, args.images)
        torch.manual_seed(0)
        ours = BatchStream(scan_split(root), args.size, args.size, args.batchsize, train=True, device="cpu",
                           augment="rrc_flip", cache_mb=0, workers=args.workers, progress=False)
        ours.set_normalization(MEAN, STD)
        plain = torch.utils.data.DataLoader(
            datasets.ImageFolder(str(root), transforms.Compose([
                transforms.RandomResizedCrop(args.size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                transforms.Normalize(MEAN, STD)])),
            batch_size=args.batchsize, shuffle=True, num_workers=args.workers, persistent_workers=args.workers > 0)
        limit = args.images // args.batchsize - 1
        best = {"project": 0.0, "ImageFolder": 0.0}
        for round_index in range(args.rounds):
            ours.set_epoch(round_index)
            best["project"] = max(best["project"], rate(iter(ours), limit))
            best["ImageFolder"] = max(best["ImageFolder"], rate(iter(plain), limit))
    print(f"{args.images} JPEGs of 500x375, {args.size}x{args.size} random-resized crops, batch {args.batchsize}, "
          f"{args.workers} worker(s)")
    print(f"(a) project data path: {best['project']:.0f} images/s   (b) ImageFolder + PIL: "
          f"{best['ImageFolder']:.0f} images/s   a/b = {best['project'] / best['ImageFolder']:.2f}")


if __name__ == "__main__":
    main()
