"""The recipe of a study (``PLAN=study DATASET=<name> bash 3_run.sh``): the network, image size and schedule a
dataset folder's own data call for, so a user goes from an image folder to a verdict without choosing them.

    python study.py --dataset my-images            # prints the recipe as shell assignments for 3_run.sh

The rules (docs/benchmarks.md, "A study of your own data"):

- image size: the median of the training images' shorter sides (up to 300 images looked at), rounded to a multiple
  of 4 and kept within 16..64 for small images; larger images are trained at 112 x 112 (224 with a pretrained
  network);
- network: SimpleCNN (index 41) up to 32 px, ResNet-32 (43) up to 64 px, torchvision's ResNet-18 (9) above, and
  ResNet-18 with ImageNet weights (``--pretrained``, from the torch hub cache) when ``pretrained``;
- batch 128 and lr 0.1 from 4,096 training images on, else batch 32 and lr 0.05 (0.01 when fine-tuning);
- epochs: about 1,500 optimiser steps, ``round(1500 / ceil(N / batch))``, kept within 10..200;
- the learning rate: 5 warm-up epochs, then stages of ``E - 2s``, ``s`` and ``s`` epochs (``s = round(0.134 E)``,
  at least 1) at x0.2 each: the shape of the CIFAR and Fashion-MNIST plans (15 epochs: 11 2 2).
"""
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from loader import load_splits
from utils import ArgumentParser, UserError, run_cli

STEPS = 1500
LOOKED_AT = 300


def image_side(paths):
    """The median shorter side of (up to ``LOOKED_AT``, evenly spread) images."""
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, min(LOOKED_AT, len(paths))).astype(int)]
    sides = []
    for path in chosen:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except OSError:
            continue
    if not sides:
        raise UserError(f"none of the training images looked at could be opened (e.g. {chosen[0]})")
    return float(np.median(sides))


def recipe(train_images, side, pretrained=False):
    """The study's settings for ``train_images`` training images whose median shorter side is ``side`` pixels."""
    if pretrained:
        model, size = 9, 224
    elif side <= 32:
        model, size = 41, max(16, 4 * round(side / 4))
    elif side <= 64:
        model, size = 43, min(64, 4 * round(side / 4))
    else:
        model, size = 9, 112
    batch = 128 if train_images >= 4096 else 32
    lr = 0.01 if pretrained else (0.1 if batch == 128 else 0.05)
    epochs = min(200, max(10, round(STEPS / math.ceil(train_images / batch))))
    stage = max(1, round(0.134 * epochs))
    return {"model": model, "size": size, "batch": batch, "lr": lr, "epochs": epochs,
            "lrstep": [epochs - 2 * stage, stage, stage]}


def get_args_parser():
    parser = ArgumentParser(description="Print the recipe of a study of one dataset folder.")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data_dir", default="a_datasets")
    parser.add_argument("--pretrained", action="store_true")
    return parser


def main(args):
    train = load_splits(args.data_dir, args.dataset)["train"]
    found = recipe(len(train), image_side(train.paths), args.pretrained)
    print(f"MODEL={found['model']}; SIZE={found['size']}; BATCH={found['batch']}; LR={found['lr']}; "
          f"STUDY_EPOCHS={found['epochs']}; LRSTEP='{' '.join(map(str, found['lrstep']))}'")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
