"""Standard long-tailed benchmarks exported from ``torchvision.datasets`` as image folders.

    python data_split.py --from_torchvision CIFAR10 --root data --imbalance_ratio 100

writes ``a_datasets/<out_name>/{train,valid,test}/<class>/<index>.png``:

* ``train/``: the official training set; with ``--imbalance_ratio R`` class k (in
  the dataset's label order) keeps ``int(n_max * R**(-k / (C - 1)))`` images
  (``exp``, Cao et al. 2019) or ``n_max`` for the first ``C // 2`` classes and
  ``int(n_max / R)`` for the rest (``step``), drawn with ``--seed``;
* ``valid/``: ``--valid_per_class`` images of every class, from official training
  images that ``train/`` does not use (default) or from the official test set
  (``--valid_source test``, which leaves ``n_max`` at the published value);
* ``test/``: the official test set (less ``valid/`` with ``--valid_source test``).

File names are the images' indices in the official split, so no image is in two
splits.  Class folders are the dataset's class names; where sorting the names
would change the label order (FashionMNIST, KMNIST), each name gets its label as
a prefix (``0_T-shirt-top``), so the loader's class k is the dataset's class k.
"""
import gzip
import importlib
import re
import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils import UserError, atomic_write, inside, staged_folder

TORCHVISION_DATASETS = ("CIFAR10", "CIFAR100", "FashionMNIST", "MNIST", "KMNIST", "SVHN")
MNIST_FAMILY = ("FashionMNIST", "MNIST", "KMNIST")


# ---------------------------------------------------------------- reading torchvision's files

def _dataset_class(name):
    return getattr(importlib.import_module("torchvision.datasets"), name)


def expected_files(name, root):
    """Where torchvision looks for ``name``'s files under ``root``, as one readable phrase."""
    dataset = _dataset_class(name)
    if name in MNIST_FAMILY:
        files = [filename for filename, _ in dataset.resources]
        return f"{', '.join(files)} into {Path(root) / name / 'raw'}/"
    if name == "SVHN":
        return f"{dataset.split_list['train'][1]} and {dataset.split_list['test'][1]} into {root}/"
    return f"{dataset.filename} into {root}/ (or its extracted {dataset.base_folder}/ folder)"


def unpack_mnist_raw(name, root):
    """Decompress ``<root>/<name>/raw/*.gz`` that torchvision has not unpacked.

    torchvision only unpacks archives whose MD5 is in its list; re-compressed copies
    (Debian's ``dataset-fashion-mnist``, for one) hold the same IDX files but fail
    that check, so they are decompressed here and torchvision reads the IDX files.
    """
    raw = Path(root) / name / "raw"
    for filename, _ in _dataset_class(name).resources:
        archive, unpacked = raw / filename, raw / filename.removesuffix(".gz")
        if unpacked.is_file() and not idx_complete(unpacked):
            if not archive.is_file():
                raise UserError(f"{unpacked} is truncated or damaged (its size disagrees with its header); delete "
                                f"it and put {filename} into {raw}/")
            warnings.warn(f"{unpacked} is truncated or damaged; unpacking {archive} again")
            unpacked.unlink()
        if archive.is_file() and not unpacked.is_file():
            with gzip.open(archive, "rb") as source, atomic_write(unpacked, "wb") as target:
                shutil.copyfileobj(source, target)
            if not idx_complete(unpacked):
                unpacked.unlink()
                raise UserError(f"{archive} unpacks to a truncated IDX file; replace it with a complete copy")


IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def idx_complete(path):
    """Whether an IDX file (MNIST's format) is as long as its header says: magic ``0 0 type dims``, then one
    big-endian 4-byte size per dimension, then the items."""
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_ITEM_BYTES:
                return False
            sizes = struct.unpack(f">{magic[3]}I", file.read(4 * magic[3]))
    except (OSError, struct.error):
        return False
    expected = 4 + 4 * len(sizes) + IDX_ITEM_BYTES[magic[2]] * int(np.prod(sizes, dtype=np.int64))
    return Path(path).stat().st_size == expected


def open_torchvision(name, root, download=True):
    """The official (train, test) datasets of ``name``: from ``root``, else downloaded into it."""
    if name not in TORCHVISION_DATASETS:
        raise UserError(f"--from_torchvision: unknown dataset {name!r}; choose one of {', '.join(TORCHVISION_DATASETS)}")
    dataset = _dataset_class(name)
    if name in MNIST_FAMILY:
        try:
            unpack_mnist_raw(name, root)
        except (OSError, EOFError) as error:
            raise UserError(f"cannot unpack the {name} files in {Path(root) / name / 'raw'}: {error}") from None

    def both(fetch):
        if name == "SVHN":
            return dataset(root, split="train", download=fetch), dataset(root, split="test", download=fetch)
        return dataset(root, train=True, download=fetch), dataset(root, train=False, download=fetch)

    try:
        return _checked(name, *both(False))
    except RuntimeError as error:  # not there (or damaged): download when allowed
        unreadable = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    present = _present_files(name, root)
    problem = (f"its files are there ({', '.join(present)}) but could not be read ({unreadable})" if present
               else "it is not there and --no_download was given")
    if download:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            return _checked(name, *both(True))
        except UserError:
            raise
        except Exception as error:  # urllib, socket and checksum errors all mean: fetch it by hand
            problem = f"downloading it failed ({str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__})"
    raise UserError(f"{name} could not be read from {root}/: {problem}; put {expected_files(name, root)}")


def _present_files(name, root):
    """The names of ``name``'s files that are in ``root`` (to tell damaged from missing)."""
    dataset = _dataset_class(name)
    if name in MNIST_FAMILY:
        candidates = [Path(root) / name / "raw" / f for filename, _ in dataset.resources
                      for f in (filename, filename.removesuffix(".gz"))]
    elif name == "SVHN":
        candidates = [Path(root) / dataset.split_list[split][1] for split in ("train", "test")]
    else:
        candidates = [Path(root) / dataset.filename, Path(root) / dataset.base_folder]
    return [path.name for path in candidates if path.exists()]


def _checked(name, train_set, test_set):
    """Refuse a split whose image and label files disagree in length (a wrong or truncated labels file)."""
    for split, dataset in (("train", train_set), ("test", test_set)):
        images = getattr(dataset, "data", None)
        labels = dataset_targets(dataset)
        if images is not None and len(images) != len(labels):
            raise UserError(f"the official {split} split of {name} has {len(images)} images but {len(labels)} labels: "
                            "an images or labels file is damaged or belongs to another dataset; replace it")
    return train_set, test_set


def dataset_targets(dataset):
    """Labels of a torchvision-style dataset as an int array (``targets`` or SVHN's ``labels``)."""
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    return np.asarray(labels, dtype=np.int64)


def class_folders(names, always_numbered=False):
    """Folder names for classes in label order: the names, made file-safe, prefixed by the zero-padded label
    (``0007_name``) if sorting them would change the order (or make two equal), or ``always_numbered``."""
    safe = [re.sub(r"[^\w.+-]+", "-", str(name)).strip("-") or "class" for name in names]
    if not always_numbered and sorted(safe) == safe and len(set(safe)) == len(safe):
        return safe
    digits = len(str(len(names) - 1))
    return [f"{label:0{digits}d}_{name}" for label, name in enumerate(safe)]


def class_names(folders):
    """The class names behind folder names in label order, as far as ``class_folders`` can be undone: the label
    prefix dropped when every folder carries its own (``0_T-shirt-top`` -> ``T-shirt-top``), ``_`` read as a space
    (``ankle_boot`` -> ``ankle boot``, as LIFT's code reads class names); a ``-`` stays, as it may have been one."""
    digits = len(str(len(folders) - 1))
    numbered = len(folders) > 0 and all(folder.startswith(f"{label:0{digits}d}_") and len(folder) > digits + 1
                                        for label, folder in enumerate(folders))  # 0_.., 1_..: the labels in order
    return [(folder[digits + 1:] if numbered else folder).replace("_", " ").strip() or folder for folder in folders]


# ---------------------------------------------------------------- what goes where

def long_tail_counts(n_max, num_classes, ratio=None, kind="exp"):
    """Train images of the k-th class of a long-tailed profile (Cao et al., 2019): ``int(n_max * ratio**(-k /
    (C - 1)))`` (``exp``), or ``n_max`` for the first ``C // 2`` and ``int(n_max / ratio)`` for the rest
    (``step``); ``n_max`` everywhere without ``ratio``.  The one profile of both ``data_split.py`` paths."""
    if ratio is None:
        return [n_max] * num_classes
    if kind == "exp":
        last = max(num_classes - 1, 1)
        return [int(n_max * ratio ** (-k / last)) for k in range(num_classes)]
    return [n_max if k < num_classes // 2 else int(n_max / ratio) for k in range(num_classes)]


def default_valid_per_class(train_targets, num_classes):
    """min(100, smallest class / 50), at least 1: 100 for CIFAR-10 and the MNIST family, 10 for CIFAR-100."""
    smallest = int(np.bincount(train_targets, minlength=num_classes).min())
    return max(1, min(100, smallest // 50))


def plan_benchmark(train_targets, test_targets, num_classes, *, imbalance_ratio=None, imbalance_type="exp",
                   valid_per_class=100, valid_source="train", n_max=None, seed=0):
    """``{split: {class: (source, indices)}}`` with ``source`` "train" or "test" (the official split).

    Without ``imbalance_ratio`` every class keeps all its remaining training images.
    """
    rng = np.random.default_rng(seed)
    by_class = {source: [rng.permutation(np.flatnonzero(targets == k)) for k in range(num_classes)]
                for source, targets in (("train", train_targets), ("test", test_targets))}
    from_train = valid_per_class if valid_source == "train" else 0
    short = [k for k in range(num_classes) if len(by_class[valid_source][k]) <= valid_per_class]
    if short:
        raise UserError(f"--valid_per_class {valid_per_class} leaves nothing of class(es) {short} in the official "
                        f"{valid_source} set; choose a smaller --valid_per_class")
    available = [len(indices) - from_train for indices in by_class["train"]]
    if imbalance_ratio is None:
        counts = available if n_max is None else [min(n_max, have) for have in available]
    else:
        n_max = min(available) if n_max is None else n_max
        counts = long_tail_counts(n_max, num_classes, imbalance_ratio, imbalance_type)
    over = [f"class {k} needs {count}, has {have}" for k, (count, have) in enumerate(zip(counts, available))
            if count > have]
    if over:
        raise UserError(f"--n_max {n_max} asks for more training images than there are ({'; '.join(over)}); "
                        "lower --n_max or --valid_per_class, or use --valid_source test")
    if min(counts) < 1:
        raise UserError(f"--imbalance_ratio {imbalance_ratio:g} leaves a class with no training image at "
                        f"n_max {n_max}; lower the ratio")
    valid_pool = by_class[valid_source]
    plan = {"train": {}, "valid": {}, "test": {}}
    for k in range(num_classes):
        plan["valid"][k] = (valid_source, np.sort(valid_pool[k][:valid_per_class]))
        plan["train"][k] = ("train", np.sort(by_class["train"][k][from_train:from_train + counts[k]]))
        test_start = valid_per_class if valid_source == "test" else 0
        plan["test"][k] = ("test", np.sort(by_class["test"][k][test_start:]))
    return plan


# ---------------------------------------------------------------- writing

def write_benchmark(plan, datasets, folders, destination, force=False, progress=True):
    """Save every planned image as ``<destination>/<split>/<folder>/<index>.png`` (staged, then renamed)."""
    total = sum(len(indices) for split in plan.values() for _, indices in split.values())
    digits = len(str(max(len(dataset) for dataset in datasets.values())))
    with staged_folder(destination, force) as staging, \
            tqdm(total=total, desc=f"writing {Path(destination).name}", unit="img", disable=None if progress else True,
                 file=sys.stderr) as bar:
        for split, classes in plan.items():
            for label, (source, indices) in classes.items():
                folder = staging / split / folders[label]
                folder.mkdir(parents=True)
                for index in indices.tolist():
                    image, target = datasets[source][index]
                    if int(target) != label:
                        raise RuntimeError(f"{source} image {index} has label {target}, planned as {label}")
                    image.save(folder / f"{index:0{digits}d}.png")
                    bar.update()


def print_counts(plan, folders, official, file=None):
    """Per-class table: official train / test sizes and the three splits."""
    width = max(8, *map(len, folders))
    header = f"{'label':>5} {'class':<{width}} {'official':>9} {'train':>6} {'valid':>6} {'test':>6}"
    print(header, file=file)
    totals = np.zeros(4, dtype=int)
    for label, folder in enumerate(folders):
        row = [official[label]] + [len(plan[split][label][1]) for split in ("train", "valid", "test")]
        totals += row
        print(f"{label:>5} {folder:<{width}} {row[0]:>9} {row[1]:>6} {row[2]:>6} {row[3]:>6}", file=file)
    print(f"{'':>5} {'total':<{width}} {totals[0]:>9} {totals[1]:>6} {totals[2]:>6} {totals[3]:>6}", file=file)


def export_benchmark(train_set, test_set, class_names, destination, *, imbalance_ratio=None, imbalance_type="exp",
                     valid_per_class=None, valid_source="train", n_max=None, seed=0, force=False, progress=True):
    """Plan, write and describe a benchmark from two torchvision-style datasets; returns the plan."""
    train_targets, test_targets = dataset_targets(train_set), dataset_targets(test_set)
    num_classes = len(class_names)
    if valid_per_class is None:
        valid_per_class = default_valid_per_class(train_targets, num_classes)
    plan = plan_benchmark(train_targets, test_targets, num_classes, imbalance_ratio=imbalance_ratio,
                          imbalance_type=imbalance_type, valid_per_class=valid_per_class, valid_source=valid_source,
                          n_max=n_max, seed=seed)
    folders = class_folders(class_names)
    write_benchmark(plan, {"train": train_set, "test": test_set}, folders, destination, force, progress)
    print_counts(plan, folders, np.bincount(train_targets, minlength=num_classes).tolist())
    return plan


def export_torchvision(args):
    """``data_split.py --from_torchvision NAME``."""
    if args.imbalance_ratio is not None and args.imbalance_ratio < 1:
        raise UserError(f"--imbalance_ratio must be >= 1, got {args.imbalance_ratio}")
    for flag in ("valid_per_class", "n_max"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be a positive number of images, got {getattr(args, flag)}")
    name = args.from_torchvision
    destination = inside(args.out_dir, args.out_name or (f"{name}-LT" if args.imbalance_ratio else name), "--out_name",
                         name=True)
    if destination.exists() and not args.force:
        raise UserError(f"{destination} already exists; pass --force to replace it")
    train_set, test_set = open_torchvision(name, args.root, download=not args.no_download)
    names = getattr(train_set, "classes", None) or [str(k) for k in range(int(dataset_targets(train_set).max()) + 1)]
    export_benchmark(train_set, test_set, names, destination, imbalance_ratio=args.imbalance_ratio,
                     imbalance_type=args.imbalance_type, valid_per_class=args.valid_per_class,
                     valid_source=args.valid_source, n_max=args.n_max, seed=args.seed, force=args.force)
    profile = (f"train long-tailed ({args.imbalance_type}, ratio {args.imbalance_ratio:g})" if args.imbalance_ratio
               else "train balanced")
    print(f"wrote {destination} from torchvision's {name} (seed {args.seed}, {profile}, valid from the official "
          f"{args.valid_source} set)")
    return 0
