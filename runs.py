"""Everything about a run folder: its layout, creating, finding and listing runs, recording a training run, and
loading a trained one for evaluation, prediction and comparison.

    logs/<Model>/<dataset>/<objective>/<YYYY-MM-DD-HH-MM-SS>/
        <best valid acc>.pth  last.pth  train.csv  valid.csv  config.json  events.out.tfevents.*   (1_train.py)
        <split>_metrics.json  <split>_predictions.npz  confusion_matrix.svg  per_class.svg  reliability.svg
                                                                                                   (2_test.py)

``logs/README.md`` describes the same files for users.
"""
import argparse
import contextlib
import csv
import datetime
import difflib
import functools
import hashlib
import io
import json
import math
import os
import re
import signal
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import criterion
import methods
import stats
import train_args
from b_models.foundation import absolute_spec, file_architecture, spec_argument
from get_model import build_network, chosen_model, model_name
from runtime import torch_minor
from utils import (ArgumentParser, UserError, WriteError, atomic_write, contained, inside, load_checkpoint, load_weights,
                   name_argument, run_cli, save_atomic, write_json_atomic)

RUN_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
RUN_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")
BEST_CHECKPOINT = re.compile(r"^(\d+\.\d{2})\.pth$")  # <best valid top-1>.pth
LAST_CHECKPOINT = "last.pth"
CONFIG = "config.json"
TRAIN_CSV = "train.csv"
VALID_CSV = "valid.csv"
CONFUSION_MATRIX = "confusion_matrix.svg"
RELIABILITY = "reliability.svg"
PER_CLASS = "per_class.svg"
PRIOR_SHIFT = "prior_shift.svg"
RECORD = "record.json"  # a run record's (records.py): what its checkpoint held, and its files' SHA-256
RECORD_FORMAT = 1
CSV_COLUMNS = ("epoch", "loss", "acc", "top5acc", "lr")
# What every checkpoint of a run holds (RunRecorder.checkpoint), and what last.pth adds for --resume.
CHECKPOINT_KEYS = ("model", "epoch", "acc", "classes", "image_size", "mean", "std", "model_index", "objective", "args")
RESUME_KEYS = CHECKPOINT_KEYS + ("optimizer", "scheduler", "scaler", "best_acc", "best_epoch", "best_file")
TRAIN_EXTRA_COLUMNS = ("time_s",)
VALID_EXTRA_COLUMNS = ("balanced_acc", "macro_f1", "many_acc", "medium_acc", "few_acc", "images")


CHECKPOINTS = ("best", "last")  # the <acc>.pth chosen on valid/, or last.pth


def metrics_file(split, checkpoint="best"):
    """``test_metrics.json`` for the best checkpoint, ``test_last_metrics.json`` for ``last.pth``."""
    return f"{split}{'' if checkpoint == 'best' else '_' + checkpoint}_metrics.json"


def predictions_file(split, checkpoint="best"):
    return f"{split}{'' if checkpoint == 'best' else '_' + checkpoint}_predictions.npz"


def best_checkpoint_name(acc):
    return f"{acc:.2f}.pth"


# ---------------------------------------------------------------- creating, finding and listing runs

def run_parent(logs_dir, model, dataset, objective):
    """``logs/<Model>/<dataset>/<objective>``, refused when a link planted on the way leads outside ``logs_dir``."""
    parent = inside(Path(logs_dir) / model, dataset, "--dataset", name=True) / objective
    return contained(logs_dir, parent, "--logs_dir")


def create_run_dir(logs_dir, model, dataset, objective, now=None):
    """Create and return a new, empty run folder named after the start time.

    ``mkdir`` is atomic, so two runs started in the same second never share a
    folder: the later one takes the next free second.
    """
    parent = run_parent(logs_dir, model, dataset, objective)
    start = now or datetime.datetime.now().replace(microsecond=0)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for offset in range(3600):
            run_dir = parent / (start + datetime.timedelta(seconds=offset)).strftime(RUN_TIME_FORMAT)
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as error:
        raise UserError(f"cannot create the run folder under {logs_dir}: {error.strerror}; "
                        "choose a writable --logs_dir") from None
    raise UserError(f"no free run folder name under {parent}")


def list_runs(logs_dir, model, dataset, objective):
    """Run folder names (``YYYY-MM-DD-HH-MM-SS``) of one model/dataset/objective, oldest first."""
    parent = run_parent(logs_dir, model, dataset, objective)
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and RUN_NAME.match(p.name))


def find_run_dir(logs_dir, model, dataset, objective, datetime_name):
    """The run folder for ``datetime_name`` (or ``latest``), or a ``UserError`` listing the runs."""
    runs = list_runs(logs_dir, model, dataset, objective)
    parent = run_parent(logs_dir, model, dataset, objective)
    available = f"available runs: {', '.join(runs)}" if runs else f"there are no runs under {parent}"
    if datetime_name == "latest":
        if not runs:
            raise UserError(f"no run to pick as latest; {available}")
        return contained(logs_dir, parent / runs[-1], "--datetime latest")
    if not RUN_NAME.match(datetime_name):
        raise UserError(f"--datetime must look like YYYY-MM-DD-HH-MM-SS or be 'latest', got {datetime_name!r}; {available}")
    if datetime_name not in runs:
        raise UserError(f"no run {datetime_name} under {parent}; {available}")
    return contained(logs_dir, parent / datetime_name, "--datetime")


def run_is_complete(run_dir):
    """Whether a run trained all its epochs: ``config.json`` records ``finished`` (runs before that record: as many
    complete ``valid.csv`` rows as epochs, and a best checkpoint)."""
    try:
        config = json.loads((Path(run_dir) / CONFIG).read_text())
        epochs = int(config["args"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if isinstance(config.get("finished"), dict):
        return config["finished"].get("epochs") == epochs
    try:
        rows = [row for row in read_csv(Path(run_dir) / VALID_CSV) if row.get("acc")]
    except OSError:
        return False
    return len(rows) >= epochs and best_checkpoint_path(run_dir) is not None


def tagged_runs(logs_dir, model, dataset, tag, seed=None):
    """The run folders of one model and dataset (any objective) whose ``--tag`` is ``tag`` (and whose seed is
    ``seed``), oldest first: how a plan finds the runs of one of its rows, and a second stage its first stage."""
    root = inside(Path(logs_dir) / model, dataset, "--dataset", name=True)
    found = []
    for config in sorted(root.glob(f"*/*/{CONFIG}")) if root.is_dir() else []:
        if not RUN_NAME.match(config.parent.name):
            continue
        try:
            saved = json.loads(config.read_text())
        except (OSError, ValueError):
            continue
        args = saved.get("args", {}) if isinstance(saved, dict) else None  # a damaged one (null, a list): not a run
        if isinstance(args, dict) and args.get("tag") == tag and (seed is None or args.get("seed") == seed):
            found.append(config.parent)
    return sorted(found, key=lambda run: (run.name, str(run)))


def model_folder(model_id):
    """The log-folder name of a registry index or a backbone by name (``timm-resnet18``), or a ``UserError``."""
    try:
        return model_name(model_id)
    except ValueError as error:
        raise UserError(str(error)) from None


def checkpoint_normalisation(path):
    """``(mean, std)`` a checkpoint of this project's runs records, for a ``--pretrained FILE`` that is one (a
    network pretrained here, fine-tuned on another dataset: its inputs normalised as it learned them), or None for
    ``"imagenet"`` and any other weights file."""
    if path in (None, "imagenet"):
        return None
    state = load_weights(path)
    mean, std = state.get("mean"), state.get("std")
    if isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)) and len(mean) == len(std) == 3:
        return [float(v) for v in mean], [float(v) for v in std]
    return None


def resolve_init(args):
    """The best checkpoint of the run ``--init_from`` names: a run folder; ``tag:LABEL``, the complete run of this
    model and dataset tagged LABEL (``--tag``) with this run's seed (how a plan's second stage finds its own seed's
    first stage); or ``latest[:OBJECTIVE]``, the newest complete run of this model and dataset with that objective
    (default: this run's) that did not itself start from another run."""
    folder = model_folder(chosen_model(args))
    if args.init_from.startswith("tag:"):
        tag = args.init_from.partition(":")[2]
        found = [run for run in tagged_runs(args.logs_dir, folder, args.dataset, tag, args.seed) if run_is_complete(run)]
        if not found:
            raise UserError(f"--init_from {args.init_from}: no complete run tagged {tag!r} with seed {args.seed} under "
                            f"{Path(args.logs_dir) / folder / args.dataset}; train that first stage first")
        run_dir = found[-1]
    elif args.init_from == "latest" or args.init_from.startswith("latest:"):
        objective = args.init_from.partition(":")[2] or args.objective
        if objective not in criterion.OBJECTIVES:
            raise UserError(f"--init_from {args.init_from}: unknown objective {objective!r}")
        candidates = [run_parent(args.logs_dir, folder, args.dataset, objective) / name
                      for name in reversed(list_runs(args.logs_dir, folder, args.dataset, objective))]
        first_stage = [run for run in candidates if not run_settings(run).get("init_from") and run_is_complete(run)]
        if not first_stage:
            raise UserError(f"--init_from {args.init_from}: no complete run under "
                            f"{run_parent(args.logs_dir, folder, args.dataset, objective)} to start from (a first stage "
                            "that stopped early is not one)")
        run_dir = first_stage[0]
    else:
        run_dir = Path(args.init_from)
        if not run_dir.is_dir():
            raise UserError(f"--init_from: {run_dir} is not a run folder (or give 'latest' or 'latest:OBJECTIVE')")
    path = best_checkpoint_path(run_dir)
    if path is None:
        raise UserError(f"--init_from: {run_dir} has no <acc>.pth checkpoint (the run stopped before its first "
                        "epoch ended)")
    return path.resolve()


def find_runs(logs_dir, runs=(), dataset=None, model_index=None, objectives=(), datetime="latest", seeds=(), where=()):
    """The run folders named by ``compare.py``'s selection flags (``--runs``, ``--dataset`` ... ``--where``);
    ``model_index``: an index or a backbone by name (``--model``)."""
    runs = [Path(run) for run in runs]
    if dataset is not None or objectives:
        if dataset is None or model_index is None:
            raise UserError("--objectives and --dataset need both --dataset and --model_index (or --model)")
        name = model_folder(model_index)
        objectives = objectives or [o for o in criterion.OBJECTIVES if list_runs(logs_dir, name, dataset, o)]
        if not objectives:
            raise UserError(f"no runs under {Path(logs_dir) / name / dataset}")
        for objective in objectives:
            if datetime == "all":
                found = list_runs(logs_dir, name, dataset, objective)
                if not found:
                    find_run_dir(logs_dir, name, dataset, objective, "latest")  # raises, naming the folder
                runs += [run_parent(logs_dir, name, dataset, objective) / run for run in found]
            else:
                runs.append(find_run_dir(logs_dir, name, dataset, objective, datetime))
    if not runs:
        raise UserError("name runs with --runs, or with --dataset and --model_index")
    missing = [str(run) for run in runs if not (run / VALID_CSV).is_file()]
    if missing:
        raise UserError(f"not a training run folder (no valid.csv): {', '.join(missing)}")
    runs = list(dict.fromkeys(runs))
    for run in runs:
        verify_record(run)  # a record (records.py) edited since its export is named, not compared
    if seeds:
        runs = [run for run in runs if run_settings(run).get("seed") in seeds]
        if not runs:
            raise UserError(f"no run has seed {' or '.join(map(str, seeds))}")
    if where:
        alternatives = {}  # (objective, key) -> the values allowed: one key given twice is either value
        for objective, key, value in map(parse_condition, where):
            alternatives.setdefault((objective, key), []).append(value)
        runs = [run for run in runs if all(objective not in (None, run_objective(run))
                                           or any(_matches(run_settings(run), key, value) for value in values)
                                           for (objective, key), values in alternatives.items())]
        if not runs:
            raise UserError(f"no run has {' and '.join(where)}")
    return runs


def parse_condition(text):
    """``--where [OBJECTIVE:]KEY=VALUE``: the value read as JSON when it is (0.005, true, null), else as text; with
    an objective, the condition applies to that objective's runs only."""
    condition, equals, value = text.partition("=")
    objective, colon, key = condition.rpartition(":")
    if not equals or not key:
        raise UserError(f"--where takes [OBJECTIVE:]KEY=VALUE (a setting of config.json's args), got {text!r}")
    if colon and objective not in criterion.OBJECTIVES:
        raise UserError(f"--where {text}: {objective!r} is not an objective; choose one of {', '.join(criterion.OBJECTIVES)}")
    if key not in train_args.defaults():
        close = difflib.get_close_matches(key, list(train_args.defaults()), n=1)
        raise UserError(f"--where {text}: {key!r} is not a setting of a run" + (f" (did you mean {close[0]}?)" if close
                                                                               else " (1_train.py --help lists them)"))
    try:
        value = json.loads(value)
    except ValueError:
        pass
    return (objective if colon else None), key, value


def _matches(settings, key, value):
    """Whether a run's argument ``key`` is ``value`` (a run older than the flag has its default, ``run_settings``):
    equal and of the same kind, so ``seed=false`` does not match seed 0 nor ``drw=1`` match true."""
    saved = settings.get(key)
    return saved == value and isinstance(saved, bool) == isinstance(value, bool)


def run_objective(run):
    """The objective, from ``logs/<Model>/<dataset>/<objective>/<time>``."""
    return run.parent.name


def best_checkpoint_path(run_dir):
    """The ``<acc>.pth`` of a run folder (the highest, should there be several), or None."""
    best = [(float(m.group(1)), p) for p in Path(run_dir).iterdir() if (m := BEST_CHECKPOINT.match(p.name))]
    return max(best)[1] if best else None


def add_run_arguments(parser):
    """The flags that name a trained run (2_test.py, predict.py)."""
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model_index", type=int, help="the model index the run used")
    model.add_argument("--model", type=spec_argument, metavar="timm:NAME|clip:NAME",
                       help="the backbone by name the run used (instead of --model_index)")
    parser.add_argument("--dataset", required=True, type=name_argument("--dataset"), help="the dataset the run used")
    parser.add_argument("--objective", required=True, choices=list(criterion.OBJECTIVES),
                        help="the objective the run used")
    parser.add_argument("--datetime", required=True, help="run start time YYYY-MM-DD-HH-MM-SS, or 'latest'")


# ---------------------------------------------------------------- recording a training run

def state_dict_of(model):
    """Weights without DDP's ``module.`` or torch.compile's ``_orig_mod.`` prefixes."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return model.state_dict()


def saved_arguments(state):
    """The arguments a ``last.pth`` was trained with, as a namespace over today's defaults (``train_args``)."""
    return argparse.Namespace(**train_args.complete(state["args"]))


class CsvLog:
    """One row per epoch; the file is flushed after every row so a crash loses nothing."""

    def __init__(self, path, columns, keep_epochs_before=None):
        self.path, self.columns = Path(path), list(columns)
        if keep_epochs_before is not None and self.path.exists():
            self._truncate(keep_epochs_before)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()

    def _truncate(self, epoch):
        """Drop rows of epochs >= ``epoch`` (written before a crash, not yet checkpointed)."""
        rows = [row for row in read_csv(self.path) if int(row["epoch"]) < epoch]
        with atomic_write(self.path, newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row):
        try:
            self.writer.writerow({key: _format(value) for key, value in row.items()})
            self.file.flush()
        except OSError as error:
            raise WriteError(f"cannot write {self.path}: {error.strerror or error}") from None

    def close(self):
        self.file.close()


def _format(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.8g}"
    return value


def read_csv(path):
    """The rows of a run's CSV log, or a ``UserError`` naming a file that is not one (binary, damaged)."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path} is not a CSV log of this project ({type(error).__name__}); restore it or delete "
                        "the run") from None


class RunRecorder:
    """Rank 0's files of a run: CSV rows, tensorboard scalars, ``config.json``, the best ``<acc>.pth`` and
    ``last.pth``.  ``about`` is what every checkpoint holds besides the weights (classes, counts, image size,
    mean/std, model, head, objective, arguments, environment).

    Per epoch the rows are written first and ``last.pth`` last, so a resumed run
    drops the rows of an epoch whose checkpoint never landed.
    """

    def __init__(self, run_dir, about, start_epoch=0, best=None):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir, self.about = run_dir, about
        self.best_acc, self.best_epoch, best_file = best or (-1.0, -1, None)
        self.best_path = run_dir / best_file if best_file else None
        if best_file:  # best checkpoints of an epoch killed before its last.pth landed
            for stray in run_dir.iterdir():
                if BEST_CHECKPOINT.match(stray.name) and stray.name != best_file:
                    stray.unlink()
        keep = start_epoch if best else None
        self.train_csv = CsvLog(run_dir / TRAIN_CSV, CSV_COLUMNS + TRAIN_EXTRA_COLUMNS, keep)
        self.valid_csv = CsvLog(run_dir / VALID_CSV, CSV_COLUMNS + VALID_EXTRA_COLUMNS, keep)
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=start_epoch if best else None)
        self._write_config(resumed=best is not None)

    def _write_config(self, resumed):
        """``config.json``: the arguments and the environment of the run (and of each resumption)."""
        path = self.run_dir / CONFIG
        config = {"args": self.about["args"], "environment": self.about["environment"]}
        if "pretrained_sha256" in self.about:  # the --pretrained file it started from
            config["pretrained_sha256"] = self.about["pretrained_sha256"]
        if self.about.get("model_config") is not None:  # a backbone's architecture (a config file's contents)
            config["model_config"] = self.about["model_config"]
        if resumed and path.is_file():
            try:
                config = json.loads(path.read_text())
            except ValueError:  # damaged: start its record again rather than stop the resumed run
                warnings.warn(f"{path} was damaged; it is written again, without the earlier resumptions")
                config = {"environment": self.about["environment"]}
            config["args"] = self.about["args"]
            config.setdefault("resumed_with", []).append(self.about["environment"])
            if self.about.get("model_config") is not None:  # a run begun before this record: the same architecture
                config.setdefault("model_config", self.about["model_config"])
        write_json_atomic(config, path)

    def checkpoint(self, model, epoch, valid):
        """What a best ``<acc>.pth`` holds: weights plus everything needed to evaluate them."""
        return {"model": state_dict_of(model), "epoch": epoch, "acc": valid["acc"], "top5acc": valid["top5acc"],
                "loss": valid["loss"], "balanced_acc": valid["balanced_acc"], "macro_f1": valid["macro_f1"],
                **self.about}

    def record(self, epoch, train_row, valid, model, training_state):
        """One finished epoch: its rows, a new best checkpoint when it is the best, then ``last.pth``, and only then
        the previous best is removed, so a kill at any moment leaves ``last.pth`` naming a best file that exists
        (a leftover best of an unrecorded epoch is removed on resume)."""
        self._log(epoch, train_row, valid)
        previous = self.best_path
        if valid["acc"] > self.best_acc:
            self.best_acc, self.best_epoch = valid["acc"], epoch
            self.best_path = self.run_dir / best_checkpoint_name(self.best_acc)
            save_atomic(self.checkpoint(model, epoch, valid), self.best_path)
        save_atomic({**self.checkpoint(model, epoch, valid), **training_state, "best_acc": self.best_acc,
                     "best_epoch": self.best_epoch, "best_file": self.best_path.name}, self.run_dir / LAST_CHECKPOINT)
        if previous is not None and previous != self.best_path:
            previous.unlink(missing_ok=True)

    def _log(self, epoch, train_row, valid):
        self.train_csv.write({"epoch": epoch, **train_row})
        self.valid_csv.write({"epoch": epoch, **{key: valid[key] for key in CSV_COLUMNS[1:] + VALID_EXTRA_COLUMNS}})
        for split, row in (("train", train_row), ("valid", valid)):
            for key in ("loss", "acc", "top5acc"):
                self.writer.add_scalar(f"{split}/{key}", row[key], epoch)
        self.writer.add_scalar("train/lr", train_row["lr"], epoch)  # the learning rate is the training's
        for key in VALID_EXTRA_COLUMNS[:-1]:  # all but the image count
            if not math.isnan(valid[key]):
                self.writer.add_scalar(f"valid/{key}", valid[key], epoch)
        for name, recall in zip(self.about["classes"], valid["per_class_recall"]):
            self.writer.add_scalar(f"valid_class_acc/{name}", 100 * float(recall), epoch)
        self.writer.flush()

    def finish(self, epochs):
        """Mark the run complete in ``config.json`` (``run_is_complete``): a plan skips it, a second stage may start
        from it; and record its settings and best validation score as TensorBoard hyper-parameters."""
        path = self.run_dir / CONFIG
        config = json.loads(path.read_text())
        config["finished"] = {"epochs": epochs, "at": datetime.datetime.now().isoformat(timespec="seconds")}
        write_json_atomic(config, path)
        best = [row for row in read_csv(self.run_dir / VALID_CSV) if row.get("epoch") == str(self.best_epoch)]
        score = float(best[0]["balanced_acc"]) if best and best[0].get("balanced_acc") else math.nan
        write_hparams(self.writer, self.about, {"hparams/best_valid_balanced_acc": score,
                                                "hparams/best_valid_acc": self.best_acc})

    def close(self):
        self.train_csv.close()
        self.valid_csv.close()
        self.writer.close()


# ---------------------------------------------------------------- TensorBoard hyper-parameters

# The metrics every run's HParams record names (2_test.py adds the test ones to the same run).
HPARAM_METRICS = ("hparams/best_valid_balanced_acc", "hparams/best_valid_acc", "hparams/test_balanced_acc",
                  "hparams/test_acc", "hparams/test_macro_f1", "hparams/test_ece")
_BOOKKEEPING = {"resume", "data_dir", "logs_dir", "cache_mb", "disk_cache", "workers", "compile", "no_amp",
                "skip_bad_images", "sync_bn", "tag", "amp_eval"}


def hparam_values(about):
    """A run's settings as TensorBoard hyper-parameters: its network and data, and every argument that says how it
    trained (objective, its options, method flags, seed), as numbers, booleans or text."""
    values = {"model": about.get("model_name"), "classes": len(about.get("classes", []))}
    for key, value in sorted(about.get("args", {}).items()):
        if key in _BOOKKEEPING or key == "model":  # --model: the network's name above says it
            continue
        if key == "init_from" and value:
            value = Path(value).parent.parent.name + "/" + Path(value).parent.name  # the objective and run it started from
        values[key] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return values


def write_hparams(writer, about, metrics):
    """Write a run's hyper-parameters and ``metrics`` into its own event files (no sub-run), so ``tensorboard
    --logdir logs`` lists every run by its settings in the HParams tab."""
    from torch.utils.tensorboard.summary import hparams
    experiment, start, end = hparams(hparam_values(about), {name: math.nan for name in HPARAM_METRICS})
    for summary in (experiment, start, end):
        writer.file_writer.add_summary(summary)
    add_hparam_metrics(writer, metrics)


def add_hparam_metrics(writer, metrics, step=0):
    for name, value in metrics.items():
        if value is not None and not math.isnan(value):
            writer.add_scalar(name, value, step)
    writer.flush()


# ---------------------------------------------------------------- a trained run

@dataclass
class TrainedRun:
    """A finished run: its folder and its best checkpoint, with what evaluating or applying the network needs."""
    run_dir: Path
    checkpoint_path: Path
    state: dict
    checkpoint: str = "best"  # which of CHECKPOINTS

    @property
    def classes(self):
        return list(self.state["classes"])

    @property
    def settings(self):
        """The arguments the run was trained with."""
        return self.state["args"]

    @property
    def objective(self):
        return criterion.get_objective(self.state["objective"])

    def probability_scale(self):
        """The factor on the outputs whose softmax the loss trained (LDAM's ``s``), see ``criterion.Objective``."""
        return self.objective.probability_scale(self.settings)

    def network(self, runtime):
        """The checkpoint's network, with its classifier head, on ``runtime``'s device in eval mode."""
        try:  # a backbone by name: its architecture from the recorded spec and config, no file needed
            model = build_network(self.state.get("model_spec") or self.state["model_index"], len(self.classes),
                                  self.state.get("normed_head", False), self.state.get("head_scale", 1.0),
                                  lws=self.state.get("lws", False), transform_input=self.state.get("transform_input"),
                                  config=self.state.get("model_config"))
        except ValueError as error:
            raise UserError(f"{self.checkpoint_path}: {error}") from None
        model = method_network(model, self.state.get("args") or {}, len(self.classes))
        model.load_state_dict(self.state["model"])
        return runtime.prepare(model).eval()


def method_network(model, settings, num_classes):
    """The network a run's method trains (``methods.Method.network``), from the registry's ``model``."""
    method = methods.get(settings.get("method"))
    return model if method is None else method.network(model, settings, num_classes)


def open_run(logs_dir, model_id, dataset, objective, datetime_name, checkpoint="best"):
    """The run named on a command line (``--datetime`` a start time or ``latest``; ``model_id`` an index or a backbone
    by name) with its best checkpoint (or ``last.pth``), checked against it; warns when the installed torch differs
    from the one it trained with."""
    run_dir = find_run_dir(logs_dir, model_folder(model_id), dataset, objective, datetime_name)
    path = best_checkpoint_path(run_dir) if checkpoint == "best" else run_dir / LAST_CHECKPOINT
    if path is None or not path.is_file():
        name = "<acc>.pth" if checkpoint == "best" else LAST_CHECKPOINT
        raise UserError(f"{run_dir} has no {name} checkpoint (the run stopped before its first epoch ended)")
    state = load_run_checkpoint(path)
    trained = state.get("model_spec") or state.get("model_index")
    named = isinstance(trained, str) and isinstance(model_id, str)  # one backbone, however its config file is named
    if (model_name(trained) != model_folder(model_id)) if named else trained != model_id:
        what = f"--model {trained}" if state.get("model_spec") else f"model index {trained}"
        raise UserError(f"{path} was trained with {what}, not {model_id}")
    trained_with = state.get("environment", {}).get("torch")
    if trained_with and torch_minor(trained_with) != torch_minor(torch.__version__):
        warnings.warn(f"{path.name} was trained with torch {trained_with}; evaluating with torch {torch.__version__} "
                      "may give slightly different numbers")
    return TrainedRun(run_dir, path, state, checkpoint)


# ---------------------------------------------------------------- reading a run's records

def run_settings(run_dir):
    """The arguments a run was trained with (``config.json``, else its checkpoint), over today's defaults for
    flags added since; {} when neither is readable."""
    config = run_dir / CONFIG
    if config.is_file():
        try:
            saved = _arguments(json.loads(config.read_text()).get("args", {}), config)
            problems = train_args.saved_problems(saved)
            if problems:
                raise ValueError("; ".join(problems[:2]))
            return train_args.complete(saved)
        except (ValueError, AttributeError, TypeError) as error:
            raise UserError(f"{config} is damaged ({str(error).splitlines()[0][:80]}); restore it from the run's "
                            f"checkpoint or delete the run") from None
    for path in (run_dir / LAST_CHECKPOINT, best_checkpoint_path(run_dir)):
        if path is not None and path.is_file():
            try:
                return train_args.complete(_arguments(load_checkpoint(path).get("args", {}), path))
            except UserError:
                continue
    return {}


def _arguments(args, source):
    """A run's saved arguments: a dict of flag names, else ``ValueError``."""
    if not isinstance(args, dict) or not all(isinstance(key, str) for key in args):
        raise ValueError(f"its arguments are {type(args).__name__}, not a record of flags")
    return args


def load_run_checkpoint(path, required=CHECKPOINT_KEYS):
    """A checkpoint of a run of this project (``utils.load_checkpoint``), with what evaluating it relies on checked:
    class names, image size, mean/std, model index, arguments; else a ``UserError`` naming the file and the field."""
    state = load_checkpoint(path, required=required)
    problems = []
    classes = state["classes"]
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(name, str) for name in classes):
        problems.append("classes (a list of class names)")
        classes = None
    for key in ("mean", "std"):
        value = state[key]
        if not (isinstance(value, (list, tuple)) and len(value) == 3 and
                all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)) or \
                (key == "std" and min(value) <= 0):
            problems.append(f"{key} (three finite numbers{', positive' if key == 'std' else ''})")
    size = state["image_size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        problems.append("image_size (two positive whole numbers)")
    if state.get("model_spec") is not None:  # a backbone by name
        try:
            if not isinstance(state["model_spec"], str):
                raise TypeError
            model_name(state["model_spec"])
        except (ValueError, TypeError):
            problems.append("model_spec (timm:NAME or clip:NAME)")
    elif not isinstance(state["model_index"], int) or isinstance(state["model_index"], bool):
        problems.append("model_index (a whole number)")
    if not isinstance(state["args"], dict) or not isinstance(state["model"], dict):
        problems.append("args and model (records)")
    counts = state.get("class_counts")
    if counts is not None and classes is not None and not (
            isinstance(counts, (list, tuple)) and len(counts) == len(classes) and
            all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts)):
        problems.append("class_counts (one positive whole number per class)")
    if problems:
        raise UserError(f"{path} is not a checkpoint this project wrote: bad {'; bad '.join(problems)}")
    return state


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _regenerate(run_dir, split, checkpoint):
    return (f"run python 2_test.py on {run_dir} again (--split {split}"
            f"{' --checkpoint ' + checkpoint if checkpoint != 'best' else ''})")


def read_metrics(run_dir, split, checkpoint="best"):
    """A run's ``<split>_metrics.json`` as a dict (a metric that could not be computed is None), None when absent,
    or a ``UserError`` saying which file is damaged and how to regenerate it."""
    path = run_dir / metrics_file(split, checkpoint)
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is damaged ({str(error).splitlines()[0][:80]}); "
                        f"{_regenerate(run_dir, split, checkpoint)}") from None
    return metrics


def _expected_sha256(run_dir, name, recorded):
    """The SHA-256 a predictions file must have: the one its metrics file names, or in a record (whose predictions
    are a compact copy) the one ``record.json`` gives for the copy of that file; None when nothing names one."""
    record = read_record(run_dir)
    if record is None:
        return recorded
    entry = record["predictions"].get(name) or {}
    if recorded and entry.get("source_sha256") != recorded:
        raise UserError(f"{Path(run_dir) / name} and its metrics file come from different evaluations in this "
                        f"record; export the run again (records.py export)")
    return entry.get("sha256")


def load_predictions(run_dir, split=None, checkpoint="best", variant=None):
    """``(split, paths, targets, predicted classes)`` from a run's saved predictions (``split``, or test else
    valid) of one checkpoint, or None; with ``variant`` (``posthoc``, ``tau_norm``) the classes 2_test.py predicted
    after that test-time adjustment (None when it was not run).  A damaged file, or one from another evaluation
    than the metrics file beside it, is a ``UserError`` saying how to regenerate it.  A record's compact file
    (``records.py``) holds the predicted classes themselves."""
    for name in ([split] if split else ["test", "valid"]):
        path = run_dir / predictions_file(name, checkpoint)
        if not path.is_file():
            continue
        recorded = (read_metrics(run_dir, name, checkpoint) or {}).get("predictions_sha256")
        expected = _expected_sha256(run_dir, path.name, recorded)
        if expected and expected != file_sha256(path):
            raise UserError(f"{path} and {metrics_file(name, checkpoint)} come from different evaluations (one was "
                            f"interrupted between them, or was edited); {_regenerate(run_dir, name, checkpoint)}")
        try:
            with np.load(path) as saved:
                if variant is not None:
                    if f"{variant}_predicted" not in saved:
                        return None
                    predicted = saved[f"{variant}_predicted"]
                elif "predicted" in saved:
                    predicted = saved["predicted"]
                else:
                    predicted = saved["probs"].argmax(axis=1) if "probs" in saved else saved["top_classes"][:, 0]
                return name, saved["paths"], saved["targets"].astype(np.int64), predicted.astype(np.int64)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            reason = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
            raise UserError(f"{path} is damaged ({reason}); {_regenerate(run_dir, name, checkpoint)}") from None
    return None


def top_one(run_dir, split="test", checkpoint="best"):
    """``(confidence, predicted)``: each image's top-1 probability and class, from a run's predictions file (the
    full probabilities, their top classes, or a record's compact copy), or None when the file keeps neither."""
    path = Path(run_dir) / predictions_file(split, checkpoint)
    with np.load(path) as saved:
        if "confidence" in saved:
            return saved["confidence"].astype(np.float64), saved["predicted"].astype(np.int64)
        if "probs" in saved:
            probabilities = saved["probs"]
            return probabilities.max(axis=1).astype(np.float64), probabilities.argmax(axis=1)
    return None


# ---------------------------------------------------------------- run records (records.py writes them)

def read_record(run_dir):
    """A record's ``record.json`` as a dict, None in a run folder, or a ``UserError`` when it is damaged."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("predictions"), dict) \
                or not isinstance(record.get("files"), dict) \
                or not all(isinstance(entry, dict) for entry in record["predictions"].values()):
            raise ValueError("not a record of this project")
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is damaged ({str(error).splitlines()[0][:80]}); export the run again") from None
    return record


RECORD_NEEDS = (CONFIG, "train.csv", "valid.csv")  # what every record holds, listed in its record.json


def verify_record(run_dir):
    """A record's files against the SHA-256 ``record.json`` gives for them (its predictions are checked when they
    are read): an edited or missing file is a ``UserError`` naming it, and so is a file that ``record.json`` does
    not list (a file added, or a listing cut down to hide an edit: its config, CSV logs, each evaluation's metrics
    and predictions must all be listed)."""
    record = read_record(run_dir)
    if record is None:
        return
    listed = set(record["files"]) | set(record["predictions"])
    needed = {*RECORD_NEEDS, *(name.replace("_predictions.npz", "_metrics.json") for name in record["predictions"])}
    present = {path.name for path in Path(run_dir).iterdir()} - {RECORD}
    for name in sorted((needed | present) - listed) + sorted(set(record["predictions"]) - present):
        raise UserError(f"{Path(run_dir) / name} is not the file that was recorded (added, or left out of "
                        f"{RECORD}, or missing since records.py exported it); export the run again from its run "
                        "folder")
    for name, digest in record["files"].items():
        path = Path(run_dir) / name
        if Path(name).name != name or not path.is_file() or file_sha256(path) != digest:
            raise UserError(f"{path} is not the file that was recorded (edited, replaced or missing since "
                            f"records.py exported it); export the run again from its run folder")


def run_facts(run_dir):
    """What a run's best checkpoint records that its results need: ``classes``, ``class_counts`` (None when not
    recorded) and ``image_size``, read from the checkpoint or from a record's ``record.json``; a ``UserError``
    when neither is there."""
    record = read_record(run_dir)
    if record is not None:
        return {key: record.get(key) for key in ("classes", "class_counts", "image_size")}
    path = best_checkpoint_path(run_dir)
    if path is None:
        raise UserError(f"{run_dir} has no best checkpoint (and is no record), so its classes are unknown")
    state = load_run_checkpoint(path)
    return {"classes": list(state["classes"]), "class_counts": state.get("class_counts"),
            "image_size": list(state["image_size"])}


def checked_metrics(run_dir, split, checkpoint="best", variant=None):
    """``read_metrics`` (its ``variant`` section with a variant), checked against the saved predictions: every
    number a table shows (top-1, balanced accuracy, macro-F1, each class's recall and the many/medium/few-shot
    accuracies) is recomputed from them and must equal the file's, a NaN or a missing number where the
    predictions give one included, so an edited metrics file (or one whose ``predictions_sha256`` was removed) is
    named rather than compared.  Metrics without their predictions are returned with a warning that they are
    unchecked."""
    metrics = read_metrics(run_dir, split, checkpoint)
    if variant is not None and metrics is not None:
        metrics = metrics.get(variant) if isinstance(metrics.get(variant), dict) else None
    if metrics is None:
        return None
    saved = load_predictions(run_dir, split, checkpoint, variant)
    if saved is None:
        if variant is None:
            warnings.warn(f"{Path(run_dir) / metrics_file(split, checkpoint)} has no predictions beside it, so its "
                          f"numbers are shown unchecked; {_regenerate(run_dir, split, checkpoint)}")
        return metrics
    _, _, targets, predicted = saved
    with np.load(Path(run_dir) / predictions_file(split, checkpoint)) as file:
        classes = len(file["classes"]) if "classes" in file else int(max(targets.max(), predicted.max())) + 1
    try:
        counts = run_facts(run_dir).get("class_counts")
    except UserError:
        counts = None
    settings = run_settings(run_dir)
    recomputed = stats.classification_metrics(targets, predicted, classes, counts, settings.get("many_shot", 100),
                                              settings.get("few_shot", 20))
    recalls = [row.get("recall") if isinstance(row, dict) else None for row in metrics.get("per_class") or []]
    pairs = [(key, metrics.get(key), recomputed[key]) for key in ("acc", "balanced_acc", "macro_f1", "many_acc",
                                                                  "medium_acc", "few_acc") if key in recomputed]
    if len(recalls) == classes:
        pairs += [(f"recall of class {k}", recall, 100 * recomputed["per_class_recall"][k])
                  for k, recall in enumerate(recalls)]
    for key, written, computed in pairs:
        if not _agrees(written, computed):
            raise UserError(f"{Path(run_dir) / metrics_file(split, checkpoint)} does not agree with its predictions "
                            f"({key}: {written} in the file, {computed:.4f} from {predictions_file(split, checkpoint)}); "
                            f"it was edited or comes from another evaluation: {_regenerate(run_dir, split, checkpoint)}")
    return metrics


def _agrees(written, computed):
    """A number of a metrics file against the one its predictions give: equal to 1e-6, and NaN (JSON null) exactly
    where the predictions give none (an empty shot group)."""
    if math.isnan(computed):
        return written is None or (isinstance(written, float) and math.isnan(written))
    return (isinstance(written, (int, float)) and not isinstance(written, bool) and math.isfinite(written)
            and abs(written - computed) <= 1e-6)


# What two runs may differ in and still be the same training: paths, speed, bookkeeping.
_NOT_TRAINING = {"seed", "tag", "init_from", "resume", "data_dir", "logs_dir", "cache_mb", "disk_cache", "workers",
                 "compile", "no_amp", "amp_eval", "skip_bad_images", "sync_bn", "many_shot", "few_shot"}


def differences(run_dir, argv):
    """The settings in which a run differs from what ``1_train.py argv`` would train now: its saved arguments against
    the flags resolved by today's code.  A plan's row found by its tag is reused only when there are none (a default
    that changed since, for one, makes the old run another training).  Files are compared by what they hold where
    the run recorded it: the ``--pretrained`` file by its SHA-256, a backbone's config file by its architecture
    (``model_config``); else by path, where a recorded file that is not on this machine is the same as the path the
    plan gives when it ends with it (the same file of another checkout)."""
    args = train_args.get_args_parser().parse_args(argv)
    args.lrstep = [int(step) for step in str(" ".join(map(str, args.lrstep))).replace(",", " ").split()]
    wanted = train_args.resolve(vars(args))
    saved = run_settings(run_dir)
    try:
        recorded = json.loads((run_dir / CONFIG).read_text())
        recorded = recorded if isinstance(recorded, dict) else {}
    except (OSError, ValueError):
        recorded = {}

    def same(key):
        a, b = saved.get(key), wanted.get(key)
        if key == "pretrained" and a not in (None, "imagenet") and b not in (None, "imagenet"):
            if recorded.get("pretrained_sha256") is not None and Path(b).is_file():
                return recorded["pretrained_sha256"] == file_sha256(b)
            return same_file(a, b)
        if key == "model" and isinstance(a, str) and isinstance(b, str):
            architecture = file_architecture(b)  # None: no config file (or none readable)
            if architecture is not None and recorded.get("model_config") is not None:
                return recorded["model_config"] == architecture
            if file_architecture(a) is not None and architecture is not None:  # both here: the files' contents
                return file_architecture(a) == architecture  # (a run recorded before model_config was)
            if file_architecture(a) is not None or architecture is not None:
                return same_file(absolute_spec(a).partition(":")[2], b.partition(":")[2])
            return a == b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return math.isclose(a, b, rel_tol=1e-12)
        return json.dumps(a) == json.dumps(b)
    return [key for key in sorted(wanted) if key not in _NOT_TRAINING and not same(key)]


def same_file(recorded, wanted):
    """Whether the file a run recorded is the file a plan names now: the same path, or the same file of another
    checkout: a recorded path that ends with the relative path the plan gives, where one of the two is not there
    (a clone without the run's files, or a machine without that checkout)."""
    recorded, wanted = Path(recorded), Path(wanted)
    if recorded.resolve() == wanted.resolve():
        return True
    return not wanted.is_absolute() and recorded.parts[-len(wanted.parts):] == wanted.parts and \
        not (recorded.exists() and wanted.exists())


def find_parser():
    """``python runs.py find --model_index M|--model SPEC --dataset D --tag LABEL --seed S [--logs_dir logs]
    [--evaluated_with KEY ...] [-- FLAGS]``: for 3_run.sh, the newest run with that tag and seed as
    ``complete|evaluated|incomplete<TAB><folder>``, ``stale<TAB><folder><TAB><settings>`` when it trained otherwise
    than ``1_train.py FLAGS`` would now (``differences``), or nothing (exit 1).  With ``--records DIR``, where
    ``--logs_dir`` has no such run or a stale one, the row's current record there: ``recorded<TAB><record>``, or
    ``stale`` with a record made otherwise (``_record_of_row``).  ``evaluated`` needs test metrics
    (else valid ones) that hold every ``KEY`` (``_holds``; ``test_priors``: evaluated under ``--test_prior all``)."""
    parser = ArgumentParser(prog="runs.py find")
    parser.add_argument("command", choices=("find",))
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model_index", type=int)
    model.add_argument("--model", type=spec_argument)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--logs_dir", default="logs")
    parser.add_argument("--evaluated_with", action="append", default=[], metavar="KEY",
                        help="a key the run's metrics must hold for it to count as evaluated (repeatable)")
    parser.add_argument("--records", metavar="DIR",
                        help="the records' root (records.py): where --logs_dir has no run of the row and seed, or a "
                             "stale one, a current record there is the row's run (recorded)")
    return parser


def find_main(args, flags=()):
    """``runs.py find`` (``find_parser``); ``flags``: the row's 1_train.py flags, given after ``--``."""
    model = model_folder(args.model if args.model else args.model_index)
    found = tagged_runs(args.logs_dir, model, args.dataset, args.tag, args.seed)
    run = found[-1] if found else None
    if run is not None and not run_is_complete(run) and not (run / LAST_CHECKPOINT).is_file():
        run = None  # it stopped before its first epoch ended: nothing to resume, train anew
    changed = differences(run, flags) if run is not None and flags else []
    if (run is None or changed) and args.records:
        record, record_changed = _record_of_row(args, model, flags)
        if record is not None and not record_changed:
            print(f"recorded\t{record}")
            return 0
        if run is None and record is not None:
            run, changed = record, record_changed  # stale: the row trains again, and the plan says why
    if run is None:
        return 1
    if changed:
        print(f"stale\t{run}\t{','.join(changed)}")
        return 0
    status = "incomplete"
    if run_is_complete(run):
        status = "evaluated" if _evaluated(run, args.evaluated_with) else "complete"
    print(f"{status}\t{run}")
    return 0


def _evaluated(run, keys):
    """Whether a run has test metrics (else valid ones) holding every key of ``keys`` (``_holds``)."""
    try:
        metrics = read_metrics(run, "test") or read_metrics(run, "valid")  # test's, as the tables read
    except UserError:  # a damaged metrics file: evaluate again
        return False
    return metrics is not None and all(_holds(metrics, key) for key in keys)


_NOTED = set()  # the notes this process has printed


def _record_of_row(args, model, flags):
    """``(record, what differs)`` for the newest record under ``args.records`` of the row's tag and seed, the one
    tables.py reads: ``what differs`` is empty when the plan can keep it as the row's run, else the settings (or
    ``evaluation``, ``data``) in which it is not the row's run now; ``(None, [])`` when there is none to keep.  How a
    plan on a machine without the run folders (a fresh clone, a lost ``logs/``) goes on from the committed records
    instead of training again.  Kept: a record inside the root (no link out), whose files are all listed in
    ``record.json`` and as exported (``verify_record``), whose metrics its predictions give, trained as the row
    trains now (``differences``), evaluated as the row asks (``--evaluated_with``), on this dataset as far as a
    record can tell (``_same_data``).  A damaged one is named on stderr and not kept."""
    records = tagged_runs(args.records, model, args.dataset, args.tag, args.seed)
    if not records:
        return None, []
    record = records[-1]
    try:
        contained(args.records, record, "--records")
        if read_record(record) is None:
            raise UserError(f"{record} is a run folder, not a record (records.py export writes those)")
        verify_record(record)
        if checked_metrics(record, "test") is None:
            raise UserError(f"{record} has no test evaluation")
    except UserError as error:
        if str(error) not in _NOTED:  # once per process: runs.py serve hears a row's question two or three times
            _NOTED.add(str(error))
            print(f"note: not kept, so the row trains again: {error}", file=sys.stderr)
        return None, []
    changed = differences(record, flags) if flags else []
    if not changed and not _evaluated(record, args.evaluated_with):
        changed = ["evaluation (" + ", ".join(args.evaluated_with) + ")"]
    if not changed:
        data_dir = train_args.get_args_parser().parse_args(list(flags)).data_dir if flags else "a_datasets"
        changed = _same_data(record, inside(data_dir, args.dataset, "--dataset", name=True))
    return record, changed


def _same_data(record, dataset_dir):
    """``[]`` when a record's run trained and was tested on the images of ``dataset_dir`` as far as a record can
    tell: the training split's class names and images per class, and the test split's images by relative path and
    label (not their bytes); else ``["data (...)"]`` saying which differs.  A dataset not here is not compared."""
    kept = read_record(record)
    train = _split_listing(dataset_dir / "train")
    if train is not None and (train[0], [len(paths) for paths in train[1]]) != (kept.get("classes"),
                                                                                   kept.get("class_counts")):
        return [f"data (the classes or images per class of {dataset_dir / 'train'})"]
    test = _split_listing(dataset_dir / "test")
    if test is not None:
        with np.load(Path(record) / predictions_file("test", "best")) as saved:
            recorded = sorted(zip(saved["paths"].tolist(), saved["targets"].tolist()))
        here = sorted((path, label) for label, paths in enumerate(test[1]) for path in paths)
        if recorded != here:
            return [f"data (the images or labels of {dataset_dir / 'test'})"]
    return []


def _split_listing(split_dir):
    """``(classes, [[relative image path, ...] per class])`` of a split's folders (paths relative to the dataset,
    as predictions record them), or None where there is none; read again only when a class folder changed (runs.py
    serve asks it for every row of a plan)."""
    try:
        folders = tuple((path.name, path.stat().st_mtime_ns) for path in sorted(Path(split_dir).iterdir()))
    except OSError:
        return None
    return _scanned_split(Path(split_dir).resolve(), folders)


@functools.lru_cache(maxsize=8)
def _scanned_split(split_dir, folders):
    """``_split_listing`` of a split whose class folders (names, modification times) are ``folders``."""
    from loader import scan_split  # (torch is loaded already; loader's other imports are only needed here)
    try:
        split = scan_split(split_dir)
    except (UserError, OSError):
        return None
    paths = [[] for _ in split.classes]
    for path, label in zip(split.paths, split.labels):
        paths[label].append(path.relative_to(split_dir.parent).as_posix())
    return split.classes, paths


def _holds(metrics, key):
    """Whether an evaluation's metrics hold ``key`` (``test_priors``: every one of the eleven shifted priors, as
    ``2_test.py --test_prior all`` writes them)."""
    if key == "test_priors":
        return set(stats.SHIFTED_PRIORS) <= set(metrics.get(key) or {})
    return key in metrics


def find_command(argv):
    """``runs.py find ... [-- FLAGS]`` as its command line gives it: the exit status."""
    cut = argv.index("--") if "--" in argv else len(argv)
    return run_cli(lambda args: find_main(args, argv[cut + 1:]), find_parser(), argv[:cut])


def serve(requests, answers):
    """``python runs.py serve``: a plan's questions, one a line (a ``runs.py find`` command line, its arguments
    apart by the ASCII unit separator, \\x1f), each answered on one line, ``<exit status>\\x1f<what it printed>``.
    3_run.sh asks all of its questions of one such process, so a question costs no start of Python and torch
    (seconds each); errors go to stderr as the command's would, and so does anything but the one line a find
    prints (argparse's help: then exit status 2), so an answer is always one line.  It ends when its input does
    (the plan's end)."""
    for line in requests:
        argv = line.rstrip("\n").split("\x1f")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                status = find_command(argv) if argv[:1] == ["find"] else _not_a_question(argv)
            except SystemExit as stop:  # argparse's refusal of a bad command line (it said why), or its help
                status = stop.code if isinstance(stop.code, int) else 2
        lines = printed.getvalue().strip().splitlines()
        if len(lines) > 1:
            sys.stderr.write(printed.getvalue())
            lines, status = [], status or 2
        answers.write(f"{status}\x1f{''.join(lines)}\n")
        answers.flush()


def _not_a_question(argv):
    print(f"error: runs.py serve answers 'find' command lines only, not {argv[0]!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        # Ctrl-C reaches every process of the plan: the plan's shell decides whether it stops (it does when no
        # command of its own handles it), and this process goes when the plan does (3_run.sh starts it so already)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # bytes as the command line's arguments are decoded (a folder name that is not UTF-8 survives the trip)
        encoding = sys.getfilesystemencoding()
        serve(io.TextIOWrapper(sys.stdin.buffer, encoding, errors="surrogateescape"),
              io.TextIOWrapper(sys.stdout.buffer, encoding, errors="surrogateescape"))
        sys.stderr.flush()
        os._exit(0)  # at once: the plan waits for this process, and unloading torch takes seconds
    else:
        sys.exit(find_command(sys.argv[1:]))
