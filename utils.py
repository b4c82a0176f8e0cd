"""What every layer needs: the user-error type and the command line around it, atomic writes, safe loading."""
import argparse
import contextlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch


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


def parse_int_list(values, flag="--lrstep"):
    """``['60', '60,40', '40']`` -> ``[60, 60, 40, 40]``: accepts spaces and commas."""
    items = [item for value in values for item in str(value).split(",") if item.strip()]
    try:
        return [int(item) for item in items]
    except ValueError:
        raise UserError(f"{flag} takes whole numbers of epochs, got {' '.join(map(str, values))}") from None


# ---------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_write(path, mode="w", **open_options):
    """Open a temporary file beside ``path`` for writing; when the block succeeds it is flushed, synced and
    renamed over ``path``, otherwise removed, so ``path`` is always either the old file or the whole new one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; results are ordinary files
        with os.fdopen(handle, mode, **open_options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_atomic(payload, path):
    """``torch.save`` through ``atomic_write``."""
    with atomic_write(path, "wb") as file:
        torch.save(payload, file)


def write_json_atomic(payload, path):
    """Indented JSON through ``atomic_write``."""
    with atomic_write(path) as file:
        file.write(json.dumps(payload, indent=1, default=str) + "\n")


def save_svg(figure, path):
    """A matplotlib figure as SVG through ``atomic_write``."""
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="svg")


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


# ---------------------------------------------------------------- safe loading

def load_checkpoint(path, map_location="cpu"):
    """Load with ``weights_only=True``; a file that carries code or is not a checkpoint is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols; we refuse those files anyway
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"refusing to load {path}: it is not a plain weights checkpoint ({reason[:200]})") from None
