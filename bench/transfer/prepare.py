"""The two datasets of the transfer experiment (``PLAN=transfer-source``, ``PLAN=transfer``), from Fashion-MNIST:

- ``fmnist-head``: classes 0-4 (T-shirt/top, trouser, pullover, dress, coat), balanced: every official training
  image but 100 per class kept for ``valid/``, and the official test images; the source a network is pretrained on.
- ``fmnist-tail``: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), long-tailed at ratio 100 from 5,000
  training images (5000, 1581, 500, 158, 50; ``benchmarks.long_tail_counts``, drawn with seed 0), the same
  ``valid/`` and test images: the target, whose classes the source never saw.

Both are copied out of ``a_datasets/fmnist-balanced`` (``data_split.py --from_torchvision FashionMNIST
--imbalance_ratio 1 --valid_per_class 100``, made first when it is missing; nothing is downloaded unless ``--root``
lacks the four official files and ``--download`` is given).

    python bench/transfer/prepare.py --root data
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from benchmarks import long_tail_counts  # noqa: E402
from loader import is_image_file  # noqa: E402
from utils import staged_folder  # noqa: E402

SPLITS = ("train", "valid", "test")
TAIL_N_MAX, TAIL_RATIO = 5000, 100


def class_folders(split_dir):
    return sorted(path for path in split_dir.iterdir() if path.is_dir())


def build(balanced, out, classes, train_counts=None, seed=0):
    """``out`` from the class folders ``classes`` (indices into the balanced set's sorted classes); ``train_counts``
    draws that many training images of each (seeded), else every image is copied."""
    rng = np.random.default_rng(seed)
    with staged_folder(out) as staging:
        for split in SPLITS:
            folders = class_folders(balanced / split)
            for position, index in enumerate(classes):
                source = folders[index]
                files = sorted(path for path in source.iterdir() if is_image_file(path))
                if split == "train" and train_counts is not None:
                    files = [files[i] for i in sorted(rng.permutation(len(files))[:train_counts[position]])]
                target = staging / split / source.name
                target.mkdir(parents=True)
                for path in files:
                    shutil.copy2(path, target / path.name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data", help="torchvision's folder holding FashionMNIST/raw/")
    parser.add_argument("--data_dir", type=Path, default=Path("a_datasets"))
    parser.add_argument("--download", action="store_true", help="let torchvision download the four files")
    args = parser.parse_args(argv)
    balanced = args.data_dir / "fmnist-balanced"
    if not balanced.is_dir():
        command = [sys.executable, str(PROJECT / "data_split.py"), "--from_torchvision", "FashionMNIST", "--root",
                   args.root, "--imbalance_ratio", "1", "--valid_per_class", "100", "--out_name", balanced.name,
                   "--out_dir", str(args.data_dir), *([] if args.download else ["--no_download"])]
        if subprocess.run(command).returncode != 0:
            return 2
    if not (args.data_dir / "fmnist-head").is_dir():
        build(balanced, args.data_dir / "fmnist-head", [0, 1, 2, 3, 4])
    if not (args.data_dir / "fmnist-tail").is_dir():
        build(balanced, args.data_dir / "fmnist-tail", [5, 6, 7, 8, 9], long_tail_counts(TAIL_N_MAX, 5, TAIL_RATIO))
    for name in ("fmnist-head", "fmnist-tail"):
        counts = [len(list(folder.iterdir())) for folder in class_folders(args.data_dir / name / "train")]
        print(f"{name}: train {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
