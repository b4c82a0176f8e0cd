"""Shared plumbing: user errors, run folders, checkpoints, the lr schedule, metrics, CSV logs."""
import argparse
import bisect
import contextlib
import csv
import datetime
import math
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

RUN_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
RUN_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")
BEST_CHECKPOINT = re.compile(r"^(\d+\.\d{2})\.pth$")
LAST_CHECKPOINT = "last.pth"
CSV_COLUMNS = ("epoch", "loss", "acc", "top5acc", "lr")


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one ``error: ...`` line (exit status 2)."""

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def run_cli(main, parser, argv=None):
    """Parse ``argv``, call ``main(args)`` and turn a ``UserError`` into one stderr line."""
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        return main(parser.parse_args(argv))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def positive(kind):
    """argparse type: a strictly positive int or float."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def parse_int_list(values):
    """``['60', '60,40', '40']`` -> ``[60, 60, 40, 40]``: accepts spaces and commas."""
    items = [item for value in values for item in str(value).split(",") if item.strip()]
    try:
        return [int(item) for item in items]
    except ValueError:
        raise UserError(f"--lrstep takes whole numbers of epochs, got {' '.join(map(str, values))}") from None


# ---------------------------------------------------------------- lr schedule

def lr_factor(iteration, iters_per_epoch, stage_lengths, decay=0.2, warmup_epochs=0):
    """Multiplier of the base lr at ``iteration`` (0-based, counted over the whole run).

    Stage k of ``stage_lengths`` (in epochs) trains at ``decay**k``; epochs past the
    last boundary stay in the last stage.  With warm-up the factor also rises
    linearly per iteration, ``(t + 1) / (warmup_epochs * iters_per_epoch)``.
    """
    epoch = iteration // iters_per_epoch
    boundaries = np.cumsum(stage_lengths[:-1]).tolist()
    factor = decay ** bisect.bisect_right(boundaries, epoch)
    warmup_iters = warmup_epochs * iters_per_epoch
    if iteration < warmup_iters:
        factor *= (iteration + 1) / warmup_iters
    return factor


def cosine_factor(iteration, iters_per_epoch, epochs, warmup_epochs=0):
    """Multiplier of the base lr for ``--schedule cosine``: the linear warm-up of ``lr_factor``, then
    ``(1 + cos(pi * t / T)) / 2`` per iteration, ``t`` counted from the end of the warm-up, reaching 0 at the end."""
    warmup_iters = warmup_epochs * iters_per_epoch
    if iteration < warmup_iters:
        return (iteration + 1) / warmup_iters
    decay_iters = max(epochs * iters_per_epoch - warmup_iters, 1)
    progress = min((iteration - warmup_iters) / decay_iters, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- run folders

def run_parent(logs_dir, model_name, dataset, objective):
    return Path(logs_dir) / model_name / dataset / objective


def create_run_dir(logs_dir, model_name, dataset, objective, now=None):
    """Create and return a new, empty run folder named after the start time.

    ``mkdir`` is atomic, so two runs started in the same second never share a
    folder: the later one takes the next free second.
    """
    parent = run_parent(logs_dir, model_name, dataset, objective)
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


def list_runs(logs_dir, model_name, dataset, objective):
    """Run folder names (``YYYY-MM-DD-HH-MM-SS``) of one model/dataset/objective, oldest first."""
    parent = run_parent(logs_dir, model_name, dataset, objective)
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and RUN_NAME.match(p.name))


def find_run_dir(logs_dir, model_name, dataset, objective, datetime_name):
    """The run folder for ``datetime_name`` (or ``latest``), or a ``UserError`` listing the runs."""
    runs = list_runs(logs_dir, model_name, dataset, objective)
    parent = run_parent(logs_dir, model_name, dataset, objective)
    available = f"available runs: {', '.join(runs)}" if runs else f"there are no runs under {parent}"
    if datetime_name == "latest":
        if not runs:
            raise UserError(f"no run to pick as latest; {available}")
        return parent / runs[-1]
    if not RUN_NAME.match(datetime_name):
        raise UserError(f"--datetime must look like YYYY-MM-DD-HH-MM-SS or be 'latest', got {datetime_name!r}; {available}")
    if datetime_name not in runs:
        raise UserError(f"no run {datetime_name} under {parent}; {available}")
    return parent / datetime_name


def best_checkpoint_path(run_dir):
    """The ``<acc>.pth`` of a run folder (the highest, should there be several), or None."""
    best = [(float(m.group(1)), p) for p in Path(run_dir).iterdir() if (m := BEST_CHECKPOINT.match(p.name))]
    return max(best)[1] if best else None


@contextlib.contextmanager
def staged_folder(destination, force=False):
    """Yield an empty folder beside ``destination`` that replaces it only when the block succeeds.

    An existing ``destination`` is kept unless ``force``; a failure or Ctrl-C leaves it untouched.
    """
    destination = Path(destination)
    if destination.exists() and not force:
        raise UserError(f"{destination} already exists; pass --force to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        yield staging
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------- checkpoints

def save_atomic(payload, path):
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temp_name, 0o644)  # mkstemp creates 0600; checkpoints are ordinary files
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path, map_location="cpu"):
    """Load with ``weights_only=True``; a file that carries code or is not a checkpoint is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols; we refuse those files anyway
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"refusing to load {path}: it is not a plain weights checkpoint ({reason[:200]})") from None


def state_dict_of(model):
    """Weights without DDP's ``module.`` or torch.compile's ``_orig_mod.`` prefixes."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return model.state_dict()


# ---------------------------------------------------------------- environment

def environment_record(device=None):
    """Versions and hardware a run used, for its checkpoint and ``config.json``."""
    import torchvision

    device = torch.device(device or "cpu")
    record = {"python": platform.python_version(), "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
              "numpy": str(np.__version__), "platform": platform.platform(), "device": device.type,
              "processor": _processor_name(), "git_commit": _git_commit()}
    if device.type == "cuda":
        record.update(cuda=str(torch.version.cuda), cudnn=torch.backends.cudnn.version(),
                      gpu=torch.cuda.get_device_name(device))
    return record


def _processor_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    """The project's commit (with ``-dirty`` when files differ from it), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def torch_minor(version):
    """``'2.14.1+cu130'`` -> ``(2, 14)``."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def write_json_atomic(payload, path):
    """Write ``payload`` as indented JSON via a temporary file and a rename."""
    import json

    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    os.replace(temporary, path)


# ---------------------------------------------------------------- metrics

def shot_groups(class_counts, many_shot=100, few_shot=20):
    """Class indices with > ``many_shot``, ``few_shot``..``many_shot`` and < ``few_shot`` train images."""
    counts = np.asarray(class_counts)
    return {
        "many": np.flatnonzero(counts > many_shot),
        "medium": np.flatnonzero((counts >= few_shot) & (counts <= many_shot)),
        "few": np.flatnonzero(counts < few_shot),
    }


def classification_metrics(targets, predictions, num_classes, class_counts=None, many_shot=100, few_shot=20):
    """Top-1 (%), balanced accuracy (%), macro-F1 (%), per-class recall and shot-group accuracies."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    labels = list(range(num_classes))
    present = np.unique(targets)
    per_class_recall = recall_score(targets, predictions, labels=labels, average=None, zero_division=0)
    metrics = {
        "acc": 100.0 * float(np.mean(np.asarray(targets) == np.asarray(predictions))),
        # Balanced accuracy over the classes that occur in this split.
        "balanced_acc": 100.0 * float(balanced_accuracy_score(targets, predictions)) if len(present) else math.nan,
        "macro_f1": 100.0 * float(f1_score(targets, predictions, labels=present, average="macro", zero_division=0)),
        "per_class_recall": per_class_recall,
    }
    if class_counts is not None:
        for group, members in shot_groups(class_counts, many_shot, few_shot).items():
            members = np.intersect1d(members, present)
            metrics[f"{group}_acc"] = 100.0 * float(per_class_recall[members].mean()) if len(members) else math.nan
    return metrics


# ---------------------------------------------------------------- CSV logs

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
        with open(self.path, newline="") as file:
            rows = [row for row in csv.DictReader(file) if int(row["epoch"]) < epoch]
        temp = self.path.with_suffix(".csv.tmp")
        with open(temp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temp, self.path)

    def write(self, row):
        self.writer.writerow({key: _format(value) for key, value in row.items()})
        self.file.flush()

    def close(self):
        self.file.close()


def _format(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.8g}"
    return value


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))
