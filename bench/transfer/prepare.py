"""The two datasets of the transfer experiment (``PLAN=transfer-source``, ``PLAN=transfer``), from Fashion-MNIST:

- ``fmnist-head``: classes 0-4 (T-shirt/top, trouser, pullover, dress, coat), balanced: every official training
  image but 100 per class kept for ``valid/``, and the official test images; the source a network is pretrained on.
- ``fmnist-tail``: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), long-tailed at ratio 100 from 5,000
  training images (5000, 1581, 500, 158, 50; ``benchmarks.long_tail_counts``, drawn with seed 0), the same
  ``valid/`` and test images: the target, whose classes the source never saw.

Both are copied out of ``a_datasets/fmnist-balanced`` (``data_split.py --from_torchvision FashionMNIST
--imbalance_ratio 1 --valid_per_class 100``, made first when it is missing; as ``PLAN=fmnist-lt`` does, torchvision
downloads the four official files when ``--root`` lacks them, unless ``--no_download``).

    python bench/transfer/prepare.py --root data
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from benchmarks import long_tail_counts  # noqa: E402
from loader import is_image_file  # noqa: E402
from utils import ArgumentParser, UserError, run_cli, staged_folder  # noqa: E402

SPLITS = ("train", "valid", "test")
TAIL_N_MAX, TAIL_RATIO = 5000, 100


def class_dirs(split_dir):
    """The class folders of one split, in label order; a ``UserError`` when the split is missing."""
    if not split_dir.is_dir():
        raise UserError(f"{split_dir} is missing: delete {split_dir.parent} and run this again to make it anew")
    return sorted(path for path in split_dir.iterdir() if path.is_dir())


def build(balanced, out, classes, train_counts=None, seed=0):
    """``out`` from the class folders ``classes`` (indices into the balanced set's sorted classes); ``train_counts``
    draws that many training images of each (seeded), else every image is copied."""
    rng = np.random.default_rng(seed)
    with staged_folder(out) as staging:
        for split in SPLITS:
            folders = class_dirs(balanced / split)
            for position, index in enumerate(classes):
                source = folders[index]
                files = sorted(path for path in source.iterdir() if is_image_file(path))
                if split == "train" and train_counts is not None:
                    files = [files[i] for i in sorted(rng.permutation(len(files))[:train_counts[position]])]
                target = staging / split / source.name
                target.mkdir(parents=True)
                for path in files:
                    shutil.copy2(path, target / path.name)


def get_args_parser():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data", help="torchvision's folder holding FashionMNIST/raw/")
    parser.add_argument("--data_dir", type=Path, default=Path("a_datasets"))
    parser.add_argument("--no_download", action="store_true", help="never download; use only what --root holds")
    return parser


def main(args):
    balanced = args.data_dir / "fmnist-balanced"
    if not balanced.is_dir():
        command = [sys.executable, str(PROJECT / "data_split.py"), "--from_torchvision", "FashionMNIST", "--root",
                   args.root, "--imbalance_ratio", "1", "--valid_per_class", "100", "--out_name", balanced.name,
                   "--out_dir", str(args.data_dir), *(["--no_download"] if args.no_download else [])]
        if subprocess.run(command).returncode != 0:
            return 2  # data_split.py said why
    if not (args.data_dir / "fmnist-head").is_dir():
        build(balanced, args.data_dir / "fmnist-head", [0, 1, 2, 3, 4])
    if not (args.data_dir / "fmnist-tail").is_dir():
        build(balanced, args.data_dir / "fmnist-tail", [5, 6, 7, 8, 9], long_tail_counts(TAIL_N_MAX, 5, TAIL_RATIO))
    for name in ("fmnist-head", "fmnist-tail"):
        counts = [len(list(folder.iterdir())) for folder in class_dirs(args.data_dir / name / "train")]
        print(f"{name}: train {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
