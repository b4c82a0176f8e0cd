"""Split c_original_dataset/NAME/<class>/<images> into a_datasets/NAME/{train,valid,test}/<class>/.

    python data_split.py --dataset NAME [--ratios 0.8 0.1 0.1] [--seed 0]
                         [--imbalance_ratio R --imbalance_type exp|step] [--force]
    python data_split.py --demo      # long-tailed handwritten digits -> a_datasets/digits-lt
    python data_split.py --from_torchvision CIFAR10 --root data --imbalance_ratio 100   # CIFAR-10-LT
    python data_split.py --from_list --train_list ImageNet_LT_train.txt --valid_list ImageNet_LT_val.txt \
        --test_list ImageNet_LT_test.txt --images /data/imagenet --out_name imagenet-lt   # from split lists

The split is stratified (per class) and reproducible with ``--seed``; the
originals are copied, never moved.  ``--imbalance_ratio`` makes ``train/``
long-tailed (valid and test stay as split), following the CIFAR-LT convention.
``--from_torchvision`` builds a standard benchmark instead (see ``benchmarks.py``).
"""
import hashlib
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from benchmarks import TORCHVISION_DATASETS, export_torchvision, long_tail_counts
from split_lists import export_lists
from loader import is_image_file, list_datasets
from utils import ArgumentParser, UserError, contained, inside, name_argument, number, run_cli, seed_number, staged_folder

SPLITS = ("train", "valid", "test")
DEMO = {"dataset": "digits", "out_name": "digits-lt", "ratios": [0.6, 0.2, 0.2], "seed": 0,
        "imbalance_ratio": 10.0, "imbalance_type": "exp"}


def get_args_parser():
    parser = ArgumentParser(description="Split (and optionally long-tail) a raw image dataset.")
    parser.add_argument("--dataset", type=name_argument("--dataset"),
                        help="folder under --source_dir with one sub-folder per class")
    parser.add_argument("--ratios", type=number(float), nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VALID", "TEST"))
    parser.add_argument("--seed", type=seed_number, default=0)
    parser.add_argument("--imbalance_ratio", type=number(float), default=None,
                        help="largest / smallest train class size after long-tailing (>= 1)")
    parser.add_argument("--imbalance_type", choices=("exp", "step"), default="exp")
    parser.add_argument("--force", action="store_true", help="replace an existing split of the same name")
    parser.add_argument("--source_dir", default="c_original_dataset")
    parser.add_argument("--out_dir", default="a_datasets")
    parser.add_argument("--out_name", type=name_argument("--out_name"), default=None,
                        help="name of the split dataset, a folder under --out_dir (default: --dataset)")
    benchmark = parser.add_argument_group("standard benchmarks through torchvision.datasets (see README)")
    benchmark.add_argument("--from_torchvision", metavar="NAME", default=None,
                           help=f"export a torchvision dataset: {', '.join(TORCHVISION_DATASETS)}")
    benchmark.add_argument("--root", default="data", help="torchvision's download folder for --from_torchvision")
    benchmark.add_argument("--valid_per_class", type=int, default=None,
                           help="valid/ images per class (default: min(100, smallest class / 50))")
    benchmark.add_argument("--valid_source", choices=("train", "test"), default="train",
                           help="train: valid/ from official training images that train/ does not use; test: from "
                                "the official test set (test/ keeps the rest), so train/ can keep the exact published "
                                "counts")
    benchmark.add_argument("--n_max", type=int, default=None,
                           help="train images of class 0 (default: every class's official training images, less "
                                "valid/'s when --valid_source train, whichever class has fewest)")
    benchmark.add_argument("--no_download", action="store_true",
                           help="never download; use only what --root holds")
    lists = parser.add_argument_group("datasets defined by split lists: ImageNet-LT, Places-LT, iNaturalist 2018")
    lists.add_argument("--from_list", action="store_true",
                       help="build --out_name from lists of 'relative/path label' lines over the images in --images")
    lists.add_argument("--train_list", help="the training list (e.g. ImageNet_LT_train.txt)")
    lists.add_argument("--valid_list", help="the validation list (else --valid_per_class images of train)")
    lists.add_argument("--test_list", help="the test list (iNaturalist 2018: its validation list)")
    lists.add_argument("--images", help="the folder the lists' paths are relative to")
    lists.add_argument("--copy", action="store_true", help="copy the images instead of linking to them")
    lists.add_argument("--allow_missing", action="store_true", help="go on without listed images that are missing")
    parser.add_argument("--demo", action="store_true",
                        help="write scikit-learn's handwritten digits to --source_dir/digits and split them "
                             "into a long-tailed digits-lt (ratio 10, balanced valid/test)")
    return parser


def split_counts(n, ratios):
    """Images of one class for (train, valid, test): rounded, at least one per split with a positive ratio."""
    valid, test = (max(1, math.floor(n * r + 0.5)) if r > 0 else 0 for r in ratios[1:])
    return n - valid - test, valid, test


def kept_counts(train_counts, ratio, kind="exp"):
    """Train images kept per class (``{class: count}``): ``long_tail_counts``'s profile over the classes ranked
    by size (largest first, ties by name), each count capped by what the class has and at least one."""
    ranked = sorted(train_counts, key=lambda name: (-train_counts[name], name))
    targets = long_tail_counts(train_counts[ranked[0]], len(ranked), ratio, kind)
    return {name: max(1, min(target, train_counts[name])) for name, target in zip(ranked, targets)}


def scan_source(source):
    """``{class: sorted image paths}`` of a raw dataset, or a ``UserError``."""
    classes = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{source} has no class folders; expected {source}/<class>/<images>")
    images = {c.name: sorted(p for p in c.rglob("*") if is_image_file(p)) for c in classes}
    empty = [name for name, paths in images.items() if not paths]
    if empty:
        raise UserError(f"class folder(s) without images in {source}: {', '.join(empty)}")
    for paths in images.values():
        for path in paths:
            contained(source, path, "--dataset")  # a link planted in the raw folder never brings a file from outside
    check_distinct(path for paths in images.values() for path in paths)
    return images


def check_distinct(paths):
    """One image, one file: two paths that are the same file (one inode: a link, a hard link) or hold the same
    bytes (an alias copied in) would put one image in two splits or two classes; a ``UserError`` names both."""
    by_inode, by_content = {}, {}
    for path in paths:
        found = os.stat(path)
        other = by_inode.setdefault((found.st_dev, found.st_ino), path)
        if other != path:
            raise UserError(f"{other} and {path} are the same file (a link or a hard link); keep one of them")
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        other = by_content.setdefault(digest, path)
        if other != path:
            raise UserError(f"{other} and {path} hold the same bytes (one image twice); keep one of them")


def plan_split(images, ratios, seed, imbalance_ratio=None, imbalance_type="exp"):
    """``{split: {class: [paths]}}``: a seeded stratified split, then the long-tailed train subset."""
    needed = sum(r > 0 for r in ratios)
    too_small = [f"{name} ({len(paths)})" for name, paths in images.items() if len(paths) < needed]
    if too_small:
        raise UserError(f"class(es) with fewer images than the {needed} splits need: {', '.join(too_small)}; "
                        "add images, drop those classes or set a ratio to 0")
    rng = np.random.default_rng(seed)
    plan = {split: {} for split in SPLITS}
    for name, paths in images.items():
        order = [paths[i] for i in rng.permutation(len(paths))]
        n_train, n_valid, _ = split_counts(len(paths), ratios)
        plan["train"][name] = order[:n_train]
        plan["valid"][name] = order[n_train:n_train + n_valid]
        plan["test"][name] = order[n_train + n_valid:]
    if imbalance_ratio is not None:
        kept = kept_counts({name: len(p) for name, p in plan["train"].items()}, imbalance_ratio, imbalance_type)
        plan["train"] = {name: paths[:kept[name]] for name, paths in plan["train"].items()}
    return plan


def write_split(plan, source, destination, force):
    """Copy the planned files into ``destination`` via a temporary folder, replacing it only with ``force``."""
    with staged_folder(destination, force) as staging:
        for split, classes in plan.items():
            if not any(classes.values()):
                continue
            for name, paths in classes.items():
                for path in paths:
                    target = staging / split / name / path.relative_to(source / name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)


def print_table(images, plan, file=None):
    width = max(8, *(len(name) for name in images))
    print(f"{'class':<{width}} {'total':>6} {'train':>6} {'valid':>6} {'test':>6}", file=file)
    for name in images:
        counts = [len(plan[split][name]) for split in SPLITS]
        print(f"{name:<{width}} {len(images[name]):>6} {counts[0]:>6} {counts[1]:>6} {counts[2]:>6}", file=file)
    totals = [sum(len(paths) for paths in plan[split].values()) for split in SPLITS]
    print(f"{'total':<{width}} {sum(map(len, images.values())):>6} {totals[0]:>6} {totals[1]:>6} {totals[2]:>6}",
          file=file)


def write_demo_source(source_dir):
    """scikit-learn's 1,797 handwritten digits (8x8 scans) as PNGs in ``source_dir/digits/<digit>/``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(source_dir) / DEMO["dataset"]
    if root.is_dir() and any(root.iterdir()):
        return root
    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * (255 / 16)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{index:04d}.png")
    return root


def main(args):
    if args.from_torchvision:
        return export_torchvision(args)
    if args.from_list:
        return export_lists(args)
    if args.demo:
        write_demo_source(args.source_dir)
        for key, value in DEMO.items():
            setattr(args, key, value)
    if args.dataset is None:
        raise UserError("--dataset is required (or --demo)")
    if len(args.ratios) != 3 or min(args.ratios) < 0 or not math.isclose(sum(args.ratios), 1.0, abs_tol=1e-6):
        raise UserError(f"--ratios must be three non-negative numbers that sum to 1, got {args.ratios}")
    if args.ratios[0] <= 0 or args.ratios[1] <= 0:
        raise UserError("--ratios: train and valid need a positive share (test may be 0)")
    if args.imbalance_ratio is not None and args.imbalance_ratio < 1:
        raise UserError(f"--imbalance_ratio must be >= 1, got {args.imbalance_ratio}")
    source = inside(args.source_dir, args.dataset, "--dataset", name=True)
    if not source.is_dir():
        available = list_datasets(args.source_dir)
        hint = f"available: {', '.join(available)}" if available else f"{args.source_dir}/ is empty or missing"
        raise UserError(f"no raw dataset {source}; {hint}")
    images = scan_source(source)
    plan = plan_split(images, args.ratios, args.seed, args.imbalance_ratio, args.imbalance_type)
    destination = inside(args.out_dir, args.out_name or args.dataset, "--out_name", name=True)
    write_split(plan, source, destination, args.force)
    print_table(images, plan)
    profile = f", train long-tailed ({args.imbalance_type}, ratio {args.imbalance_ratio:g})" if args.imbalance_ratio else ""
    print(f"wrote {destination} (seed {args.seed}, ratios {' / '.join(f'{r:g}' for r in args.ratios)}{profile})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
