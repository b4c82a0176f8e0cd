"""Classify new images with a trained run: one CSV row per image.

    python predict.py --model_index=41 --dataset=digits-lt --objective=CCE --datetime=latest \\
                      --images new_scans/ one_more.png --out predictions.csv --topk 3

PATH is an image file or a folder (searched recursively; hidden and non-image
files are skipped as the loader skips them).  Images are decoded, resized and
normalised exactly as 2_test.py does, with the run's image size and mean/std.
An image that cannot be decoded gets one warning line and no row.
"""
import csv
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from get_model import chosen_model
from loader import IMAGE_EXTENSIONS, Sizing, is_image_file, normalise, try_decode
from runs import add_run_arguments, open_run
from runtime import Runtime
from utils import ArgumentParser, UserError, atomic_write, output_file, positive, run_cli


def get_args_parser():
    parser = ArgumentParser(description="Classify new images with a trained run (see README.md).")
    add_run_arguments(parser)
    parser.add_argument("--images", nargs="+", required=True, metavar="PATH", help="image files and/or folders")
    parser.add_argument("--out", default="predictions.csv", help="CSV file to write")
    parser.add_argument("--topk", type=positive(int), default=3, help="classes per row, most probable first")
    parser.add_argument("--batchsize", type=positive(int), default=None, help="default: the run's")
    parser.add_argument("--logs_dir", default="logs")
    return parser


def find_images(paths):
    """Image files named by ``paths`` (files, or folders searched recursively), in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_image_file(p)
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"--images: {path} does not exist")
    return list(dict.fromkeys(found))


@torch.inference_mode()
def predict(model, paths, height, width, mean, std, batch_size, device, scale=1.0, progress=True, eval_resize=None):
    """``(paths kept, probabilities N x K)``: undecodable files are warned about and dropped."""
    sizing = Sizing(resize_shorter=eval_resize) if eval_resize else None
    kept, probabilities = [], []
    for start in tqdm(range(0, len(paths), batch_size), desc="predicting", unit="batch", leave=False,
                      disable=None if progress else True, file=sys.stderr):
        batch = [(path, try_decode(path, height, width, sizing)) for path in paths[start:start + batch_size]]
        batch = [(path, image) for path, image in batch if image is not None]
        if not batch:
            continue
        images = normalise(torch.stack([image for _, image in batch]).to(device), mean, std)
        probabilities.append(torch.softmax(model(images).float() * scale, dim=1).cpu())
        kept += [path for path, _ in batch]
    return kept, torch.cat(probabilities) if probabilities else torch.zeros(0, 0)


def write_csv(path, image_paths, probabilities, classes, topk):
    """Rows: path, prediction, probability, then top2, top2_probability, ... up to ``topk``."""
    k = min(topk, len(classes))
    header = ["path", "prediction", "probability"]
    for rank in range(2, k + 1):
        header += [f"top{rank}", f"top{rank}_probability"]
    values, indices = probabilities.topk(k, dim=1) if len(image_paths) else (None, None)
    with atomic_write(path, newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row, image_path in enumerate(image_paths):
            cells = [spreadsheet_text(str(image_path))]
            for value, index in zip(values[row].tolist(), indices[row].tolist()):
                cells += [spreadsheet_text(classes[index]), f"{value:.6f}"]
            writer.writerow(cells)


def spreadsheet_text(text):
    """A text cell a spreadsheet shows as text: one starting with = + - @ (or a tab or carriage return) would
    be run as a formula, so it gets a leading apostrophe."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def main(args):
    run = open_run(args.logs_dir, chosen_model(args), args.dataset, args.objective, args.datetime)
    paths = find_images(args.images)
    if not paths:
        raise UserError(f"no images found in {' '.join(args.images)} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    out = output_file(args.out, "--out")  # before spending time on the images
    runtime = Runtime()
    model = run.network(runtime)
    height, width = run.state["image_size"]
    kept, probabilities = predict(model, paths, height, width, run.state["mean"], run.state["std"],
                                  args.batchsize or run.settings["batchsize"], runtime.device, run.probability_scale(),
                                  eval_resize=run.settings.get("eval_resize"))
    if not kept:
        raise UserError(f"none of the {len(paths)} image(s) could be decoded; nothing written to {out}")
    write_csv(out, kept, probabilities, run.classes, args.topk)
    print(f"classified {len(kept)} image(s) with {run.checkpoint_path} ({len(paths) - len(kept)} could not be "
          f"decoded); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
