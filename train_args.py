"""The flags of a training run (``1_train.py``): its parser, and the complete settings of a run folder.

Shared by ``1_train.py``, which parses them, and ``runs.py``, which reads a run's saved arguments over today's
defaults: a run saved before a flag existed trained with that flag's default, so it groups and resumes as one.
"""
import argparse
import functools

import criterion
from augment import AUGMENTATIONS, MIXES
from loader import SAMPLERS
from utils import ArgumentParser, number, positive, seed_number


def get_args_parser():
    parser = ArgumentParser(description="Train an image classifier (see README.md).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_index", type=int, help="network index (python get_model.py lists them)")
    parser.add_argument("--dataset", help="dataset folder under --data_dir")
    parser.add_argument("--objective", default="ERM", choices=list(criterion.OBJECTIVES),
                        help="loss function (python criterion.py lists them)")
    parser.add_argument("--lr", type=positive(float), default=None, help="initial learning rate (default: 0.1 with SGD, "
                        "0.001 with AdamW)")
    parser.add_argument("--epochs", type=positive(int), default=None,
                        help="number of epochs (default 200; with --resume: extend the run to this many)")
    parser.add_argument("--batchsize", type=positive(int), default=128, help="batch size per process")
    parser.add_argument("--height", type=positive(int), default=32, help="image height")
    parser.add_argument("--width", type=positive(int), default=32, help="image width")
    parser.add_argument("--lrstep", nargs="+", default=["60", "60", "40", "40"],
                        help="lengths in epochs of the lr stages, e.g. '60 60 40 40' or '60,60,40,40'")
    parser.add_argument("--lrdecay", type=positive(float), default=0.2, help="lr factor between stages")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=False,
                        help="linear lr warm-up over the first 5 epochs")
    parser.add_argument("--momentum", type=number(float, 0, 1), default=0.9, help="SGD's momentum")
    parser.add_argument("--weight_decay", type=number(float, 0), default=None,
                        help="default: 5e-4 with SGD, 0.05 with AdamW")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="SGD with momentum, or AdamW")
    parser.add_argument("--schedule", choices=("step", "cosine"), default="step",
                        help="step: the --lrstep stages; cosine: per-iteration cosine decay to 0 after the warm-up")
    parser.add_argument("--pretrained", nargs="?", const="imagenet", default=None, metavar="FILE",
                        help="start from torchvision's ImageNet weights (torchvision networks), or from the fitting "
                             "weights of a state dict FILE; normalises with ImageNet's mean/std")
    parser.add_argument("--augment", default="crop_flip", choices=AUGMENTATIONS,
                        help="crop_flip: padded random crop + horizontal flip; crop: no flip (digits, text); "
                             "autoaugment, randaugment, trivialaugment: crop, flip and torchvision's policy, drawn "
                             "per image; rrc_flip: random-resized crop of the full image + flip (ImageNet-style)")
    parser.add_argument("--cutout", type=number(int, 0), default=0, help="Cutout: an N x N square per image (0: off)")
    parser.add_argument("--eval_resize", type=positive(int), default=None,
                        help="validation and test: resize the shorter side to this, then take the centre height x "
                             "width (default: 256/224 of the input size with --augment rrc_flip, else the whole "
                             "image is resized)")
    parser.add_argument("--seed", type=seed_number, default=None,
                        help="random seed, 0 to 2**32 - 1 (default: drawn and recorded)")
    options = parser.add_argument_group("objective options (python criterion.py: which objective reads which)")
    for name, option in criterion.OPTIONS.items():
        if option.type is bool:
            options.add_argument(f"--{name}", action="store_true", help=option.help)
        elif option.choices:
            options.add_argument(f"--{name}", default=option.default, choices=option.choices, help=option.help)
        else:
            options.add_argument(f"--{name}", type=number(option.type, option.low, option.high, high_open=option.high_open),
                                 default=option.default, help=option.help)
    losses = parser.add_argument_group("imbalance options")
    losses.add_argument("--normed_head", action=argparse.BooleanOptionalAction, default=None,
                        help="cosine classifier (normalised features and weights); default: the objective's "
                             "(on for LDAM only)")
    losses.add_argument("--normed_scale", type=positive(float), default=30.0,
                        help="factor on the cosine logits of --normed_head, for objectives that do not scale "
                             "their logits themselves (LDAM applies its --ldam_scale)")
    losses.add_argument("--sampler", default="random", choices=SAMPLERS,
                        help="training batch sampler: class k drawn in proportion to n_k (random), 1 "
                             "(class_balanced), sqrt(n_k) or 1 / n_k (reversed)")
    losses.add_argument("--many_shot", type=number(int, 0), default=100, help="many-shot: more train images than this")
    losses.add_argument("--few_shot", type=number(int, 0), default=20, help="few-shot: fewer train images than this")
    stages = parser.add_argument_group("two-stage training (decoupling, weight balancing)")
    stages.add_argument("--init_from", default=None, metavar="RUN",
                        help="start from the network of a finished run (its best checkpoint): a run folder, or "
                             "latest[:OBJECTIVE], the newest run of this model and dataset with that objective (default: "
                             "this one) that did not itself start from another run")
    stages.add_argument("--reinit_head", action="store_true", help="with --init_from: a new, random classifier (cRT)")
    stages.add_argument("--freeze_backbone", action="store_true",
                        help="train the classifier only: every other weight and the batch-norm statistics stay as "
                             "they start")
    stages.add_argument("--lws", action="store_true",
                        help="with --init_from: learn one scale per class on the frozen classifier, nothing else (LWS)")
    stages.add_argument("--maxnorm", type=number(float, 0), default=0,
                        help="after every step, each class's classifier vector onto the ball of this radius (0: off)")
    regular = parser.add_argument_group("mixing and sharpness-aware minimisation")
    regular.add_argument("--mix", choices=MIXES, default=None, help="mix pairs of training images and their labels")
    regular.add_argument("--mix_alpha", type=positive(float), default=1.0, help="lam ~ Beta(alpha, alpha)")
    regular.add_argument("--mix_prob", type=number(float, 0, 1), default=1.0, help="share of batches mixed")
    regular.add_argument("--remix_kappa", type=positive(float), default=3.0, help="Remix: class-size ratio")
    regular.add_argument("--remix_tau", type=number(float, 0, 1), default=0.5, help="Remix: label threshold")
    regular.add_argument("--sam_rho", type=number(float, 0), default=0.0,
                         help="sharpness-aware minimisation's radius (0: plain steps)")
    system = parser.add_argument_group("files and speed")
    system.add_argument("--data_dir", default="a_datasets")
    system.add_argument("--logs_dir", default="logs")
    system.add_argument("--resume", default=None, help="run folder to continue, or 'latest'")
    system.add_argument("--cache_mb", type=number(float, 0), default=4096,
                        help="decode a split into memory when it fits this many MiB (0: always read files)")
    system.add_argument("--disk_cache", action="store_true", help="also keep decoded splits in <dataset>/.cache/")
    system.add_argument("--workers", type=number(int, 0), default=None, help="DataLoader workers when not cached")
    system.add_argument("--skip_bad_images", action="store_true", help="warn about undecodable images, skip them")
    system.add_argument("--no_amp", action="store_true", help="CUDA: train in float32")
    system.add_argument("--amp_eval", action="store_true",
                        help="CUDA: validate in mixed precision too (default: float32, as published numbers are)")
    system.add_argument("--compile", action="store_true", help="torch.compile the model")
    system.add_argument("--sync_bn", action="store_true", help="DDP: synchronise batch-norm statistics")
    return parser


@functools.cache
def _defaults():
    return vars(get_args_parser().parse_args([]))


def defaults():
    """Every flag's default (a copy)."""
    return dict(_defaults())


def complete(settings):
    """A run's saved arguments over today's defaults; runs saved before ``--normed_head`` had a plain head."""
    return {**_defaults(), "normed_head": False, **settings}
