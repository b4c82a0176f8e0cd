"""Seconds to build a dataset from split lists the size of ImageNet-LT's (``data_split.py --from_list``):
115,846 training and 20,000 validation lines over 1,000 classes with ImageNet-LT's profile (1,280 down to 5 images
a class), pointing at empty placeholder files (the import links files, it does not decode them). Prints the time
of the import alone, not of making the placeholders.

    python bench/list_import.py                 # ImageNet-LT's sizes
    python bench/list_import.py --quick         # a smoke test: 1,000 lines
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def profile(total, classes, largest=1280, smallest=5):
    """Per-class counts falling exponentially from ``largest`` to ``smallest``, scaled to sum to about ``total``."""
    counts = [largest * (smallest / largest) ** (k / (classes - 1)) for k in range(classes)]
    scale = total / sum(counts)
    return [max(1, round(count * scale)) for count in counts]


def write_list(path, images, counts, prefix):
    lines = []
    for label, count in enumerate(counts):
        folder = images / prefix / f"n{label:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            name = f"{prefix}/n{label:08d}/{index:05d}.JPEG"
            (images / name).touch()
            lines.append(f"{name} {label}\n")
    path.write_text("".join(lines))
    return len(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=115846)
    parser.add_argument("--valid_per_class", type=int, default=20)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.valid_per_class, args.classes = 800, 2, 100
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        images = work / "images"
        lines = write_list(work / "train.txt", images, profile(args.train, args.classes), "train")
        lines += write_list(work / "val.txt", images, [args.valid_per_class] * args.classes, "val")
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(ROOT / "data_split.py"), "--from_list", "--train_list",
                                 str(work / "train.txt"), "--valid_list", str(work / "val.txt"), "--images",
                                 str(images), "--out_name", "bench-lt"], cwd=work, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(result.stderr)
        linked = sum(1 for _ in (work / "a_datasets" / "bench-lt").rglob("*.JPEG"))
    print(f"{lines} list lines over {args.classes} classes -> {linked} links: {seconds:.1f} s "
          f"({lines / seconds:,.0f} lines/s, the whole data_split.py process)")


if __name__ == "__main__":
    main()
