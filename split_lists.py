"""Datasets defined by published split lists, one ``relative/path label`` per line: ImageNet-LT and Places-LT (Liu
et al., 2019), iNaturalist 2018, or any list of the same form.

    python data_split.py --from_list --train_list ImageNet_LT_train.txt --valid_list ImageNet_LT_val.txt \\
        --test_list ImageNet_LT_test.txt --images /data/imagenet --out_name imagenet-lt

builds ``a_datasets/<out_name>/{train,valid,test}/<label>_<name>/`` with symbolic links to the images (or copies),
class folders named so that sorting them keeps the label order (a zero-padded label first: with 1,000 classes
``0010`` sorts after ``0009``, where ``10`` would sort before ``2``).
"""
import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import class_folders
from utils import UserError, inside, staged_folder

SPLITS = ("train", "valid", "test")
# Published totals (train, valid, test images; classes) of the benchmarks the lists define.
PUBLISHED = {
    "ImageNet-LT": ((115_846, 20_000, 50_000), 1000),
    "Places-LT": ((62_500, 7_300, 36_500), 365),
    "iNaturalist 2018": ((437_513, None, 24_426), 8142),
}
SHOWN = 5  # paths named in a report before "and N more"


@dataclass
class Entry:
    path: str
    label: int
    line: int


def read_list(path, images="--images"):
    """The ``(relative path, label)`` lines of a split list (Windows line endings and blank lines allowed), each
    path normalised and kept inside ``images`` (``utils.inside``: a line naming an absolute path or one that leaves
    the folder is refused), or a ``UserError`` naming the first bad line."""
    entries = []
    if not Path(path).is_file():  # a folder, a FIFO (which would block the read) or nothing
        raise UserError(f"the list {path} is not a regular file")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise UserError(f"cannot read the list {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"the list {path} is not UTF-8 text (byte {error.start}); is it the right file?") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            raise UserError(f"{path}, line {number}: expected 'relative/path label', got {line[:80]!r}")
        relative = inside(images, parts[0], f"{path}, line {number}").relative_to(images).as_posix()
        entries.append(Entry(relative, int(parts[1]), number))
    if not entries:
        raise UserError(f"the list {path} names no image")
    return entries


def _listing(items):
    items = list(items)
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def check_lists(lists, images, allow_missing=False, num_classes=None):
    """Check the lists against each other and the image folder; returns ``{split: [Entry]}`` (duplicates and, with
    ``allow_missing``, missing images dropped), the number of classes, and the lines of the report."""
    report = []
    checked = {}
    for split, entries in lists.items():
        counts = Counter(entry.path for entry in entries)
        duplicates = sorted(path for path, count in counts.items() if count > 1)
        if duplicates:
            report.append(f"{split}: {len(duplicates)} path(s) listed more than once (kept once): "
                          f"{_listing(duplicates)}")
            labels = {}
            for entry in entries:
                if labels.setdefault(entry.path, entry.label) != entry.label:
                    raise UserError(f"{split}: {entry.path} is listed with two labels ({labels[entry.path]} and "
                                    f"{entry.label}); fix the list")
        checked[split] = list({entry.path: entry for entry in entries}.values())
    negative = [f"{entry.path} ({entry.label})" for entries in checked.values() for entry in entries if entry.label < 0]
    if negative:
        raise UserError(f"{len(negative)} negative label(s): {_listing(negative)}; labels count from 0")
    num_classes = num_classes or max(entry.label for entry in checked["train"]) + 1
    if num_classes > len(checked["train"]):  # a label far beyond the others: every class needs a training image
        largest = max(checked["train"], key=lambda entry: entry.label)
        raise UserError(f"train: the label {largest.label} ({largest.path}, line {largest.line}) means {num_classes:,} "
                        f"classes, more than the {len(checked['train']):,} training images; fix the list")
    for split, entries in checked.items():
        outside = [f"{entry.path} ({entry.label})" for entry in entries if not 0 <= entry.label < num_classes]
        if outside:
            raise UserError(f"{split}: {len(outside)} label(s) outside 0..{num_classes - 1}: {_listing(outside)}")
    untrained = sorted(set(range(num_classes)) - {entry.label for entry in checked["train"]})
    if untrained:
        raise UserError(f"{len(untrained)} class(es) have no training image: {_listing(map(str, untrained))}")
    names = {split: {entry.path for entry in entries} for split, entries in checked.items()}
    for first, second in (("train", "valid"), ("train", "test"), ("valid", "test")):
        both = sorted(names.get(first, set()) & names.get(second, set()))
        if both:
            raise UserError(f"{len(both)} image(s) are listed in both {first} and {second}: {_listing(both)}")
    root = Path(images)
    missing = sorted(entry.path for entries in checked.values() for entry in entries if not (root / entry.path).is_file())
    _same_files(checked, root, missing)
    if missing:
        message = f"{len(missing)} listed image(s) are not under {root}: {_listing(missing)}"
        if not allow_missing:
            raise UserError(f"{message}; check --images, or pass --allow_missing to go on without them")
        report.append(f"warning: {message}; left out (--allow_missing)")
        gone = set(missing)
        checked = {split: [entry for entry in entries if entry.path not in gone] for split, entries in checked.items()}
    return checked, num_classes, report


def _same_files(checked, root, missing=()):
    """Two list lines that name one file (the same inode: through a link, a hard link, or a link and its target)
    are refused: one image in two splits or two classes would leak, and once in one split it would count twice."""
    seen = {}
    for split, entries in checked.items():
        for entry in entries:
            if entry.path in missing:
                continue
            found = os.stat(root / entry.path)  # links followed: a hard link, a link and two spellings share it
            key = (found.st_dev, found.st_ino)
            if key in seen and seen[key][1].path != entry.path:
                other_split, other = seen[key]
                raise UserError(f"{other_split} {other.path} (line {other.line}) and {split} {entry.path} (line "
                                f"{entry.line}) are the same file ({os.path.realpath(root / entry.path)}, one inode: "
                                f"a link, a hard link or another spelling); list each image once")
            seen[key] = (split, entry)


def class_names(entries, num_classes):
    """A readable name per label: ImageNet's class names (shipped with torchvision) for 1,000 classes whose paths
    carry ImageNet's folder ids, else each label's own folder name in the lists, else the label."""
    folders = {}
    for entry in entries:
        folders.setdefault(entry.label, Counter())[Path(entry.path).parent.name] += 1
    ids = {label: counter.most_common(1)[0][0] for label, counter in folders.items()}
    if num_classes == 1000 and all(re.fullmatch(r"n\d{8}", name) for name in ids.values()):
        import torchvision.models as models  # the names are part of torchvision's weights metadata: no download
        return list(models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    return [ids.get(label, str(label)) for label in range(num_classes)]


def carve_valid(train, per_class, seed):
    """Without a valid list: ``per_class`` training images of every class become valid/ (drawn with ``seed``),
    fewer where a class has no more than that, always leaving it one training image; returns (train, valid)."""
    rng = np.random.default_rng(seed)
    by_class = {}
    for entry in train:
        by_class.setdefault(entry.label, []).append(entry)
    alone = sorted(label for label, members in by_class.items() if len(members) < 2)
    if alone:
        raise UserError(f"{len(alone)} class(es) have a single training image, none to spare for valid/: "
                        f"{_listing(map(str, alone))}; give a --valid_list")
    valid = []
    for label in sorted(by_class):
        members = by_class[label]
        chosen = set(rng.choice(len(members), min(per_class, len(members) - 1), replace=False).tolist())
        valid += [entry for index, entry in enumerate(members) if index in chosen]
    taken = {entry.path for entry in valid}
    return [entry for entry in train if entry.path not in taken], valid


def build(checked, folders, images, destination, copy=False, force=False):
    """Write the splits as links (or copies) into ``destination``, staged and swapped in when complete.  A copy
    reads only files whose real location (links followed) is inside ``images``."""
    root = Path(images).resolve()
    # Links (or copies) only of files whose real location, links followed, is inside --images.
    sources = {entry.path: inside(root, entry.path, "--copy" if copy else "--images", resolve=True)
               for entries in checked.values() for entry in entries}
    with staged_folder(destination, force) as staging:
        for split, entries in checked.items():
            made = set()
            for folder in {folders[entry.label] for entry in entries}:
                (staging / split / folder).mkdir(parents=True)
            for entry in entries:
                name = Path(entry.path).name
                target = staging / split / folders[entry.label] / name
                if target in made:  # two images of one class with one file name: the line number tells them apart
                    target = target.with_name(f"{entry.line}_{name}")
                    while target in made:
                        target = target.with_name(f"{entry.line}_{target.name}")
                made.add(target)
                source = root / entry.path
                if copy:
                    shutil.copy2(sources[entry.path], target)
                else:
                    os.symlink(source, target)


def shot_counts(train_counts, many_shot=100, few_shot=20):
    counts = np.asarray(train_counts)
    return int(np.sum(counts > many_shot)), int(np.sum((counts >= few_shot) & (counts <= many_shot))), \
        int(np.sum(counts < few_shot))


def describe(checked, num_classes, file=None):
    """Per-split totals, the class-count profile, many/medium/few class counts, and how the totals compare with a
    recognised benchmark's published ones."""
    totals = {split: len(entries) for split, entries in checked.items()}
    train_counts = np.bincount([entry.label for entry in checked["train"]], minlength=num_classes)
    print("images: " + ", ".join(f"{split} {count:,}" for split, count in totals.items()), file=file)
    print(f"classes: {num_classes:,}; training images per class: largest {train_counts.max():,}, median "
          f"{int(np.median(train_counts)):,}, smallest {train_counts.min():,} (imbalance ratio "
          f"{train_counts.max() / train_counts.min():.1f})", file=file)
    many, medium, few = shot_counts(train_counts)
    print(f"classes by training images: many (> 100) {many:,}, medium (20-100) {medium:,}, few (< 20) {few:,}",
          file=file)
    for name, (published, classes) in PUBLISHED.items():
        if classes != num_classes:
            continue
        expected = dict(zip(SPLITS, published))
        differing = [f"{split} {totals.get(split, 0):,} (published {count:,})" for split, count in expected.items()
                     if count is not None and totals.get(split) != count]
        print(f"{name}: " + ("the totals match the published ones" if not differing
                             else "differs from the published totals: " + ", ".join(differing)), file=file)
    return train_counts


def export_lists(args):
    """``data_split.py --from_list``."""
    if not args.train_list or not args.images or not args.out_name:
        raise UserError("--from_list needs --train_list, --images and --out_name (and --valid_list and --test_list, "
                        "or --valid_per_class to take valid/ from the training images)")
    if not Path(args.images).is_dir():
        raise UserError(f"--images: {args.images} is not a folder")
    if args.valid_per_class is not None and args.valid_per_class < 1:
        raise UserError(f"--valid_per_class must be a positive number of images, got {args.valid_per_class}")
    if args.valid_list and args.valid_per_class is not None:
        raise UserError("--valid_per_class takes valid/ from the training images; with --valid_list valid/ is that "
                        "list: give one of the two")
    destination = inside(args.out_dir, args.out_name, "--out_name", name=True)
    lists = {"train": read_list(args.train_list, args.images)}
    if args.valid_list:
        lists["valid"] = read_list(args.valid_list, args.images)
    if args.test_list:
        lists["test"] = read_list(args.test_list, args.images)
    if "valid" not in lists:
        if not args.valid_per_class:
            raise UserError("give --valid_list, or --valid_per_class N to take N training images of each class as "
                            "valid/")
        lists["train"], lists["valid"] = carve_valid(lists["train"], args.valid_per_class, args.seed)
    if destination.exists() and not args.force:
        raise UserError(f"{destination} already exists; pass --force to replace it")
    checked, num_classes, report = check_lists(lists, args.images, args.allow_missing)
    for line in report:
        print(line, file=sys.stderr)
    names = class_names([entry for entries in checked.values() for entry in entries], num_classes)
    build(checked, class_folders(names, always_numbered=True), args.images, destination, copy=args.copy, force=args.force)
    describe(checked, num_classes)
    print(f"wrote {destination} ({'copies' if args.copy else 'links'} to {Path(args.images).resolve()})")
    return 0


