"""The flags of a training run (``1_train.py``): its parser, and the complete settings of a run folder.

Shared by ``1_train.py``, which parses them, and ``runs.py``, which reads a run's saved arguments over today's
defaults: a run saved before a flag existed trained with that flag's default, so it groups and resumes as one.
"""
import argparse
import functools
import shlex
import warnings
from pathlib import Path

import criterion
import methods
from augment import AUGMENTATIONS, MIX_RECIPES, MIXES, POLICIES, scaled_pauses
from b_models.foundation import checked_spec, spec_argument
from get_model import chosen_model, model_name
from loader import SAMPLERS, default_eval_resize
from optimisation import SCHEDULES
from utils import ArgumentParser, UserError, name_argument, number, parse_int_list, positive, seed_number


def get_args_parser():
    parser = ArgumentParser(description="Train an image classifier (see README.md).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_index", type=int, help="network index (python get_model.py lists them)")
    parser.add_argument("--model", type=spec_argument, default=None, metavar="timm:NAME|clip:NAME",
                        help="instead of --model_index, a backbone by name: any timm model (timm:resnet18, "
                             "timm:vit_base_patch16_224.augreg_in21k) or a CLIP image encoder of open_clip "
                             "(clip:ViT-B-16.openai, or clip:CONFIG.json); docs/fine-tuning.md")
    parser.add_argument("--dataset", type=name_argument("--dataset"), help="dataset folder under --data_dir")
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
    parser.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=False,
                        help="SGD with Nesterov momentum (RIDE's and SADE's code)")
    parser.add_argument("--weight_decay", type=number(float, 0), default=None,
                        help="default: 5e-4 with SGD, 0.05 with AdamW")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="SGD with momentum, or AdamW")
    parser.add_argument("--schedule", choices=SCHEDULES, default="step",
                        help="step: the --lrstep stages; cosine: per-iteration cosine decay to 0 after the warm-up; "
                             "cosine_epoch: one lr per epoch, the cosine stepped at the start of each epoch as Kang "
                             "et al.'s and Alshammari et al.'s second stages step it (epoch e of E trains at "
                             "lr * (1 + cos(pi (e + 1) / E)) / 2, the last at 0); cosine_each_epoch: stepped after "
                             "each epoch, as MiSLAS and GLMC (lr * (1 + cos(pi e / E)) / 2, the first at lr)")
    parser.add_argument("--pretrained", nargs="?", const="imagenet", default=None, metavar="FILE",
                        help="start from torchvision's ImageNet weights (torchvision networks; with --model: the "
                             "library's named weights, from its local cache only), or from the fitting weights of a "
                             "state dict FILE (safetensors or torch.save'd tensors); normalises with the mean/std of "
                             "those weights (ImageNet's; a named backbone's own)")
    parser.add_argument("--augment", default="crop_flip", choices=AUGMENTATIONS,
                        help="crop_flip: padded random crop + horizontal flip; crop: no flip (digits, text); "
                             "autoaugment, randaugment, trivialaugment: the padded random crop, then torchvision's "
                             "policy drawn per image (flips only with --flip); rrc_flip: random-resized crop of the "
                             "full image + flip (ImageNet-style)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="random horizontal flips (default: on with crop_flip and rrc_flip, off otherwise)")
    parser.add_argument("--randaugment_ops", type=positive(int), default=2, help="RandAugment: operations per image")
    parser.add_argument("--randaugment_magnitude", type=number(int, 0, 30), default=9,
                        help="RandAugment: magnitude, 0-30 (torchvision's 31 levels; 30 is timm's m10)")
    parser.add_argument("--policy_fill", choices=("mean", "black"), default="mean",
                        help="what a policy's rotation, shear or translation uncovers: the training split's mean "
                             "colour (as PaCo and BCL fill), or black (torchvision's default)")
    parser.add_argument("--cutout", type=number(int, 0), default=0, help="Cutout: an N x N square per image (0: off)")
    parser.add_argument("--eval_resize", type=positive(int), default=None,
                        help="validation and test: resize the shorter side to this, then take the centre height x "
                             "width (default: 256/224 of the input size with --augment rrc_flip, else the whole "
                             "image is resized)")
    parser.add_argument("--seed", type=seed_number, default=None,
                        help="random seed, 0 to 2**32 - 1 (default: drawn and recorded)")
    options = parser.add_argument_group("objective options (python criterion.py: which objective reads which)")
    for name, option in criterion.OPTIONS.items():
        text = option.help.replace("%", "%%")  # argparse formats help with %: a literal % must be doubled
        if option.type is bool:
            options.add_argument(f"--{name}", action="store_true", help=text)
        elif option.choices:
            options.add_argument(f"--{name}", default=option.default, choices=option.choices, help=text)
        else:
            options.add_argument(f"--{name}", type=number(option.type, option.low, option.high, high_open=option.high_open),
                                 default=option.default, help=text)
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
                        help="train the classifier only: every other weight stays as it starts (the batch-norm "
                             "statistics: --bn_stats)")
    stages.add_argument("--bn_stats", choices=("update", "frozen"), default=None,
                        help="with --freeze_backbone or --lws: update: the network runs in training mode, so batch "
                             "norm uses and re-estimates the (re-sampled) batches' statistics, as Kang et al.'s and "
                             "Alshammari et al.'s code does (default); frozen: they stay as the first stage left them")
    stages.add_argument("--lws", action="store_true",
                        help="with --init_from: learn one scale per class on the frozen classifier, nothing else (LWS)")
    stages.add_argument("--lws_classifier_lr", type=number(float, 0), default=0.0,
                        help="with --lws: also fine-tune the classifier, at this factor of the lr (MiSLAS: 0.5 on "
                             "CIFAR-10-LT, 0.2 on CIFAR-100-LT; 0: frozen, as Kang et al.)")
    stages.add_argument("--maxnorm", type=number(float, 0), default=0,
                        help="MaxNorm: each class's classifier vector projected onto a ball (0: off); its radius is "
                             "set by --maxnorm_threshold")
    stages.add_argument("--maxnorm_threshold", choices=("relative", "absolute"), default=None,
                        help="relative (default): the radius is min + T * (max - min) of the class-vector norms the "
                             "classifier starts with (Alshammari et al.'s setPerLayerThresh); absolute: the radius is T")
    stages.add_argument("--maxnorm_every", choices=("epoch", "step"), default=None,
                        help="project after each epoch's last step (default, where Alshammari et al.'s code "
                             "projects) or after every step")
    regular = parser.add_argument_group("mixing and sharpness-aware minimisation")
    regular.add_argument("--mix", choices=MIXES, default=None, help="mix pairs of training images and their labels")
    regular.add_argument("--mix_alpha", type=positive(float), default=1.0, help="lam ~ Beta(alpha, alpha)")
    regular.add_argument("--mix_prob", type=number(float, 0, 1), default=None,
                         help="share of batches mixed (default: the method's official value, docs/recipes.md: "
                              "cmo and cutmix 0.5, mixup and remix 1)")
    regular.add_argument("--mix_off_first", type=number(int, 0), default=None,
                         help="epochs at the start without mixing (default: cmo 4, as its --start_data_aug 3; else 0)")
    regular.add_argument("--mix_off_last", type=number(int, 0), default=None,
                         help="epochs at the end without mixing (default: cmo 3; else 0)")
    regular.add_argument("--mix_off_reference", type=positive(int), default=None, metavar="EPOCHS",
                         help="count --mix_off_first and --mix_off_last in a schedule of this many epochs and scale "
                              "them to --epochs, rounded half up (CMO's recipe: 200, so its 4 and 3 are 0 and 0 of "
                              "15 epochs; default: they are epochs of this run)")
    regular.add_argument("--cmo_alpha", type=number(float, 0), default=1.0,
                         help="CMO: its minority sampler weights each image by 1 / n_k^alpha (1: every class alike)")
    regular.add_argument("--remix_kappa", type=positive(float), default=3.0, help="Remix: class-size ratio")
    regular.add_argument("--remix_tau", type=number(float, 0, 1), default=0.5, help="Remix: label threshold")
    regular.add_argument("--sam_rho", type=number(float, 0, 10), default=0.0,
                         help="sharpness-aware minimisation's radius (0: plain steps)")
    regular.add_argument("--sam_bn_stats", choices=("both", "first"), default=None,
                         help="with --sam_rho: which of SAM's two forward passes update the batch-norm running "
                              "statistics: both (default, as Rangwani et al.'s code) or the first only")
    group = parser.add_argument_group("methods (methods/; docs/recipes.md)")
    group.add_argument("--method", choices=list(methods.METHODS), default=None,
                       help="; ".join(f"{name}: {method.about}" for name, method in methods.METHODS.items())
                       .replace("%", "%%"))
    for name, (_, options) in methods.flags().items():
        group.add_argument(f"--{name}", **{**options, "help": options.get("help", "").replace("%", "%%")})
    system = parser.add_argument_group("files and speed")
    system.add_argument("--data_dir", default="a_datasets")
    system.add_argument("--logs_dir", default="logs")
    system.add_argument("--resume", default=None, help="run folder to continue, or 'latest'")
    system.add_argument("--tag", default=None, metavar="LABEL",
                        help="a label to find this run by (--init_from tag:LABEL; 3_run.sh tags each row's runs)")
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


def saved_problems(settings):
    """What is wrong with a run's saved arguments (``config.json``'s ``args``), checked against the flags they
    claim to be: a value outside a flag's choices, of the wrong kind, or that its flag's type refuses.  An unknown
    key is ignored (it belongs to a flag since removed); an empty list means they can be read."""
    problems = []
    for action in get_args_parser()._actions:
        name = action.dest
        if not action.option_strings or name not in settings or settings[name] is None:
            continue
        value = settings[name]
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
            fits = isinstance(value, bool)
        elif isinstance(value, bool) or isinstance(value, (dict, list)) != (action.nargs in ("+", "*")):
            fits = False
        else:
            values = value if isinstance(value, list) else [value]
            fits = all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in values)
            if fits and action.choices is not None:
                fits = all(item in action.choices for item in values)
            if fits and callable(action.type):
                try:
                    for item in values:
                        action.type(str(item))
                except (argparse.ArgumentTypeError, ValueError, TypeError, UserError):
                    fits = False
        if not fits:
            problems.append(f"{name}: {json_text(value)} is not a value of --{name}")
    return problems


def json_text(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def complete(settings):
    """A run's saved arguments over today's defaults, and its method settings resolved (``resolve``).  A run saved
    before a flag existed did what the project did then: a plain head (before ``--normed_head``), flips with every
    policy (before ``--flip``) and black fill, CMO's minority classes drawn in proportion to 1 / n_k (``--cmo_alpha
    2``), every batch mixed in every epoch, the batch-norm statistics of a frozen backbone kept, MaxNorm as an
    absolute radius after every step, SAM's second pass keeping the statistics; and what a method says its runs did
    before a flag of its existed (``Method.before_flags``)."""
    saved = dict(settings)
    if "flip" not in saved and saved.get("augment") in POLICIES:
        saved["flip"] = True
    if "policy_fill" not in saved and saved.get("augment") in POLICIES:
        saved["policy_fill"] = "black"
    if saved.get("mix") and "mix_off_first" not in saved:
        saved.update(mix_off_first=0, mix_off_last=0, mix_prob=saved.get("mix_prob", 1.0))
        if saved["mix"] == "cmo":
            saved["cmo_alpha"] = 2.0
    if "bn_stats" not in saved and (saved.get("freeze_backbone") or saved.get("lws")):
        saved["bn_stats"] = "frozen"
    if "maxnorm_threshold" not in saved and saved.get("maxnorm"):
        saved.update(maxnorm_threshold="absolute", maxnorm_every="step")
    if "sam_bn_stats" not in saved and saved.get("sam_rho"):
        saved["sam_bn_stats"] = "first"
    method = methods.get(saved.get("method"))
    for flag, value in (method.before_flags if method is not None else {}).items():
        if saved.get(flag) is None:  # a run saved before the method's flag existed did this
            saved[flag] = value
    return resolve({**_defaults(), "normed_head": False, **saved})


def resolve(settings):
    """``settings`` (a dict of arguments) with the defaults that depend on the method filled in, and the settings
    of methods the run does not use set to None: what ``config.json`` records and ``compare.py`` groups by."""
    settings = dict(settings)
    adamw = settings.get("optimizer") == "adamw"
    for key, value in (("epochs", 200), ("lr", 1e-3 if adamw else 0.1), ("weight_decay", 0.05 if adamw else 5e-4)):
        if settings.get(key) is None:
            settings[key] = value
    objective = criterion.OBJECTIVES.get(settings.get("objective"))
    if settings.get("normed_head") is None and objective is not None:
        settings["normed_head"] = objective.normed_head
    if settings.get("flip") is None:
        settings["flip"] = settings.get("augment") in ("crop_flip", "rrc_flip")
    if settings.get("augment") == "rrc_flip" and settings.get("eval_resize") is None and settings.get("height"):
        settings["eval_resize"] = default_eval_resize(settings["height"], settings["width"])
    if settings.get("augment") not in POLICIES:
        settings.update(policy_fill=None, randaugment_ops=None, randaugment_magnitude=None)
    elif settings.get("augment") != "randaugment":
        settings.update(randaugment_ops=None, randaugment_magnitude=None)
    mix = settings.get("mix")
    if mix:
        recipe = MIX_RECIPES[mix]
        for key, value in (("mix_prob", recipe.probability), ("mix_off_first", recipe.off_first),
                           ("mix_off_last", recipe.off_last)):
            if settings.get(key) is None:
                settings[key] = value
    else:
        settings.update(mix_prob=None, mix_off_first=None, mix_off_last=None, mix_off_reference=None, mix_alpha=None)
    if mix != "cmo":
        settings["cmo_alpha"] = None
    if mix != "remix":
        settings.update(remix_kappa=None, remix_tau=None)
    stage_two = settings.get("freeze_backbone") or settings.get("lws")
    settings["bn_stats"] = (settings.get("bn_stats") or "update") if stage_two else None
    if settings.get("maxnorm"):
        settings["maxnorm_threshold"] = settings.get("maxnorm_threshold") or "relative"
        settings["maxnorm_every"] = settings.get("maxnorm_every") or "epoch"
    else:
        settings.update(maxnorm_threshold=None, maxnorm_every=None)
    settings["sam_bn_stats"] = (settings.get("sam_bn_stats") or "both") if settings.get("sam_rho") else None
    if settings.get("optimizer") == "adamw":
        settings["nesterov"] = None
    for name, (method, _) in methods.flags().items():  # a method's flags: None in a run without it
        if settings.get("method") != method.name:
            settings[name] = None
    if methods.get(settings.get("method")) is not None:
        methods.get(settings["method"]).resolve(settings)
    if not settings.get("lws"):
        settings["lws_classifier_lr"] = None
    reads_drw = objective is not None and "drw" in objective.options
    if reads_drw and settings.get("drw") and settings.get("drw_epoch") is None:
        settings["drw_epoch"] = default_drw_epoch(settings.get("lrstep") or [], settings.get("schedule"),
                                                  settings["epochs"])
    return settings


def default_drw_epoch(lrstep, schedule, epochs):
    """Where deferred re-weighting starts by default: the last-but-one lr stage, as Cao et al. (epoch 160 of 200);
    under a cosine schedule, 80 % of the run."""
    if schedule == "step":
        return criterion.default_drw_epoch([int(step) for step in parse_int_list(lrstep)])
    return int(0.8 * epochs)


# Flags that belong to one method: (flag, the test that the method is on, what turns it on).
_METHOD_FLAGS = (
    ("mix_prob", lambda a: a.mix, "--mix"), ("mix_off_first", lambda a: a.mix, "--mix"),
    ("mix_off_last", lambda a: a.mix, "--mix"), ("mix_off_reference", lambda a: a.mix, "--mix"), ("cmo_alpha", lambda a: a.mix == "cmo", "--mix cmo"),
    ("remix_kappa", lambda a: a.mix == "remix", "--mix remix"), ("remix_tau", lambda a: a.mix == "remix", "--mix remix"),
    ("bn_stats", lambda a: a.freeze_backbone or a.lws, "--freeze_backbone or --lws"),
    ("maxnorm_threshold", lambda a: a.maxnorm, "--maxnorm"), ("maxnorm_every", lambda a: a.maxnorm, "--maxnorm"),
    ("sam_bn_stats", lambda a: a.sam_rho, "--sam_rho"),
    ("randaugment_ops", lambda a: a.augment == "randaugment", "--augment randaugment"),
    ("randaugment_magnitude", lambda a: a.augment == "randaugment", "--augment randaugment"),
    ("policy_fill", lambda a: a.augment in POLICIES, "--augment autoaugment, randaugment or trivialaugment"),
    ("lws_classifier_lr", lambda a: a.lws, "--lws"),
    *((name, lambda a, method=method: a.method == method.name, f"--method {method.name}")
      for name, (method, _) in methods.flags().items()),
)


def check_method_flags(args):
    """A method's flag given without its method, or a flip that contradicts ``--augment``: a ``UserError``."""
    defaults = _defaults()
    for name, used, method in _METHOD_FLAGS:
        if getattr(args, name) != defaults[name] and not used(args):
            raise UserError(f"--{name} has no effect without {method}; drop it or add {method}")
    if args.flip is False and args.augment in ("crop_flip", "rrc_flip"):
        raise UserError(f"--no-flip contradicts --augment {args.augment}, which flips; use --augment crop (or none)")
    if args.flip and args.augment == "none":
        raise UserError("--flip with --augment none: use --augment crop_flip, or --augment crop --flip")
    if args.mix_off_first is not None and args.mix_off_last is not None \
            and sum(scaled_pauses(args.mix_off_first, args.mix_off_last, args.epochs or 200,
                                  args.mix_off_reference)) >= (args.epochs or 200):
        scaled = "" if args.mix_off_reference is None else f" (scaled from {args.mix_off_reference} epochs)"
        raise UserError(f"--mix_off_first {args.mix_off_first} and --mix_off_last {args.mix_off_last}{scaled} leave "
                        f"none of the {args.epochs} epochs to mix in")


def check(args):
    """Every check of a training run's flags that argparse cannot make, and the defaults that depend on other flags
    filled in (``resolve``); a ``UserError`` for the first problem.  ``--init_from`` is checked here and found by
    ``runs.resolve_init``; the seed, when not given, is drawn by ``1_train.py``."""
    if args.model_index is not None and args.model is not None:
        raise UserError("give --model_index or --model, not both")
    if chosen_model(args) is None or args.dataset is None:
        raise UserError("--model_index and --dataset are required (or --model instead of --model_index; or --resume "
                        "<run folder>)")
    try:
        model_name(chosen_model(args))  # an unknown index is an error naming the valid ones
        if args.model is not None:
            args.model = checked_spec(args.model)
    except ValueError as error:
        raise UserError(str(error)) from None
    objective = criterion.get_objective(args.objective)
    args.lrstep = parse_int_list(args.lrstep)
    if not args.lrstep or min(args.lrstep) <= 0:
        raise UserError(f"--lrstep lengths must be positive numbers of epochs, got {args.lrstep}")
    check_method_flags(args)
    if args.nesterov and (args.optimizer != "sgd" or args.momentum == 0):
        raise UserError("--nesterov is SGD's Nesterov momentum: it needs --optimizer sgd and a --momentum above 0")
    vars(args).update(resolve(vars(args)))  # the defaults that depend on other flags: what config.json records
    if args.pretrained not in (None, "imagenet"):
        if not Path(args.pretrained).is_file():
            raise UserError(f"--pretrained: no file {args.pretrained} (give a state dict file, or no value for "
                            "torchvision's ImageNet weights or a --model's named weights)")
        args.pretrained = str(Path(args.pretrained).resolve())
    if args.eval_resize is not None and args.eval_resize < max(args.height, args.width):
        raise UserError(f"--eval_resize {args.eval_resize} is smaller than the {args.height}x{args.width} centre it "
                        "crops; give at least the larger of --height and --width")
    if args.mix and not objective.mixes:
        raise UserError(f"--mix does not work with {args.objective} (python criterion.py: its entry has mixes=False)")
    if args.method:
        methods.get(args.method).check(args, objective)
    if args.init_from is not None and not args.init_from.strip():
        raise UserError("--init_from is empty; give a run folder, tag:LABEL or latest[:OBJECTIVE] (or leave it out "
                        "to train from scratch)")
    for flag in ("reinit_head", "lws"):
        if getattr(args, flag) and not args.init_from:
            raise UserError(f"--{flag} changes the classifier of a trained network: give --init_from RUN")
    for flag in ("reinit_head", "maxnorm"):
        if args.lws and getattr(args, flag):
            raise UserError(f"--lws learns one scale per class of the trained classifier and keeps it as it is: "
                            f"--{flag} does not go with it")
    if args.cutout and args.cutout >= min(args.height, args.width):
        raise UserError(f"--cutout {args.cutout} is not smaller than the {args.height}x{args.width} image: it would "
                        "blank (almost) every image; DeVries & Taylor cut 16 of 32 (CIFAR-10), 8 of 32 (CIFAR-100)")
    if args.eval_resize is not None and args.eval_resize > 4 * max(args.height, args.width):
        raise UserError(f"--eval_resize {args.eval_resize} is over 4 times the {args.height}x{args.width} input; the "
                        "usual ratio is 256/224 (give at most 4 times the larger of --height and --width)")
    if args.maxnorm and args.normed_head:
        raise UserError("--maxnorm bounds the norms of a linear classifier's class vectors; a cosine head "
                        "(--normed_head) has unit norms already")
    if args.init_from and args.init_from.startswith("tag:") and args.seed is None:
        raise UserError(f"--init_from {args.init_from} finds the first stage with this run's seed: give --seed")
    return args


def warn_unread(args):
    """Warnings for flags that a run does not read: DRW that starts after the last epoch, and each objective option
    set on the command line that this objective does not read."""
    objective = criterion.get_objective(args.objective)
    if "drw" in objective.options and args.drw:
        if args.drw_epoch >= args.epochs:
            warnings.warn(f"--drw starts at epoch {args.drw_epoch + 1}, after the last of the {args.epochs} epochs: "
                          "this run has no re-weighting; set --drw_epoch")
    read = objective.reads(vars(args))
    for name, option in criterion.OPTIONS.items():
        if name not in read and getattr(args, name) not in (option.default, None):
            gate = option.only_with if option.only_with in objective.options else None
            reason = f"without --{gate}" if gate else f"by {objective.name}"
            warnings.warn(f"--{name} has no effect: it is not read {reason} (python criterion.py lists which "
                          "objective reads which option)")


def command_line(settings, script="1_train.py"):
    """The ``python 1_train.py ...`` command that trains a run with these settings (its saved arguments): every flag
    whose value is not the parser's default, in the parser's order, so a reader can train it again."""
    parser, defaults = get_args_parser(), _defaults()
    words = ["python", script]
    for action in parser._actions:
        name = action.dest
        if not action.option_strings or name in ("help", "resume") or name not in settings:
            continue
        value, flag = settings[name], action.option_strings[0]
        if value == defaults.get(name) or value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else f"--no-{flag[2:]}")
        elif action.nargs == 0:  # store_true
            if value:
                words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *(shlex.quote(str(item)) for item in value)]
        else:
            words.append(f"{flag}={shlex.quote(str(value))}")  # a name with a space (or worse) stays one word
    return " ".join(words)
