"""What every layer needs: the user-error type and the command line around it, atomic writes, safe loading."""
import argparse
import contextlib
import errno
import json
import math
import os
import pickle
import posixpath
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import warnings
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one ``error: ...`` line (exit status 2)."""

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def run_cli(main, parser, argv=None):
    """Parse ``argv``, call ``main(args)`` and turn a ``UserError`` into one stderr line.  A SIGTERM (``kill``, a
    scheduler's time limit) stops the script as Ctrl-C does, so a file being written is removed, not left half."""
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        return main(parser.parse_args(argv))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


SEED_RANGE = (0, 2**32 - 1)


def number(kind, low=None, high=None, low_open=False, high_open=False):
    """argparse type: a finite int or float within ``low``..``high`` (either bound excluded when ``*_open``);
    NaN and infinities are refused, so nonsense never reaches the code that uses it."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (value < low or low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and (value > high or high_open and value == high):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high}, got {text}")
        return value
    parse.__name__ = f"{kind.__name__} from {low} to {high}"
    return parse


def positive(kind):
    """argparse type: a strictly positive, finite int or float."""
    def parse(text):
        value = number(kind)(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def seed_number(text):
    """argparse type of a random seed: a whole number from 0 to 2**32 - 1."""
    return number(int, *SEED_RANGE)(text)


def parse_int_list(values, flag="--lrstep"):
    """``['60', '60,40', '40']`` -> ``[60, 60, 40, 40]``: accepts spaces and commas."""
    items = [item for value in values for item in str(value).split(",") if item.strip()]
    try:
        return [int(item) for item in items]
    except ValueError:
        raise UserError(f"{flag} takes whole numbers of epochs, got {' '.join(map(str, values))}") from None


# ---------------------------------------------------------------- user-given paths

def inside(root, text, what, name=False, resolve=False):
    """``root / text`` for a user-given dataset name (``name``: one path component) or relative path (a line of a
    split list), kept inside ``root``, or a ``UserError`` naming ``what``: no absolute path, no ``..`` that leaves
    ``root``, nothing empty; the spelling normalised (``a//b``, ``a/./b``, ``a\\b`` are ``a/b``), so that two
    spellings of one file are one path.  With ``resolve`` the result has its symbolic links followed and must
    still lie inside ``root``'s own real location (a copy never reads a file outside it)."""
    raw = str(text).replace("\\", "/").strip()
    relative = posixpath.normpath(raw) if raw else ""
    if not raw or relative in (".", ""):
        raise UserError(f"{what}: an empty name or path ({text!r}); give a name" + ("" if name else " under the folder"))
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise UserError(f"{what}: {text!r} is an absolute path; give a path relative to {root}")
    if relative == ".." or relative.startswith("../"):
        raise UserError(f"{what}: {text!r} leads outside {root}")
    if name and ("/" in relative or relative.startswith(".")):
        raise UserError(f"{what}: {text!r} is not a plain name (no '/', no leading '.'); it names a folder in {root}")
    if name and any(ord(character) < 32 or ord(character) == 127 for character in relative):
        raise UserError(f"{what}: {text!r} holds a control character (a newline, a tab ...); a name is printed into "
                        "logs and scripts, so give one without")
    path = Path(root) / relative
    if resolve:
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root:
            raise UserError(f"{what}: {text!r} is a link to {real}, outside {root}; copy only what lies inside it "
                            f"(or give --images the folder the links lead to)")
        return Path(real)
    return path


def contained(root, path, what):
    """``path`` when its real location (every symbolic link on the way followed) lies inside ``root``'s, else a
    ``UserError`` naming the link: the roots themselves may be links (logs on another disk), but a link planted
    inside one never leads a read of images or a write of results outside it.  ``path`` need not exist yet."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        link = next((str(parent) for parent in [Path(path), *Path(path).parents]
                     if parent.is_symlink() and Path(root) in [parent, *parent.parents][1:]), str(path))
        raise UserError(f"{what}: {link} is a symbolic link to {os.path.realpath(link)}, outside {root}; this "
                        f"project reads and writes only inside its folders (make {root} itself the link, or remove "
                        "the link)")
    return Path(path)


def name_argument(what):
    """argparse type of a dataset name (``--dataset``, ``--out_name``): one plain path component (``inside``)."""
    def parse(text):
        inside(".", text, what, name=True)
        return posixpath.normpath(str(text).strip())
    parse.__name__ = "name"
    return parse


# ---------------------------------------------------------------- atomic writes

class WriteError(UserError):
    """An output that could not be written (a full disk, a missing or read-only folder, a path that is not a
    regular file); the message names the path."""


def _refuse_non_regular(path, flag=None):
    """A path that exists and is not a regular file (a folder, a device such as /dev/null, a pipe, a socket, a
    symbolic link) is never replaced."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise WriteError(f"cannot write {flag + ' ' if flag else ''}{path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode)
                else "a device, pipe or socket")
        raise WriteError(f"{flag + ' ' if flag else ''}{path} is {kind}, not a file; give the path of a new or "
                         "regular file")


def output_file(text, flag):
    """The path a flag such as ``--out`` names, checked before any work: a new file or a regular one, in a folder
    that exists or can be made."""
    if not str(text).strip():
        raise UserError(f"{flag} needs a file name")
    path = Path(text)
    _refuse_non_regular(path, flag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise WriteError(f"cannot write {flag} {path}: {error.strerror}; choose a writable path") from None
    return path


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_options):
    """Open a temporary file beside ``path`` for writing; when the block succeeds it is flushed, synced and
    renamed over ``path``, otherwise removed, so ``path`` is always either the old file or the whole new one.
    A failure to write (a full disk, a read-only folder) is a ``WriteError`` naming ``path``; a ``path`` that
    is not a regular file is never replaced."""
    path = Path(path)
    _refuse_non_regular(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise WriteError(f"cannot write {path}: {error.strerror}") from None
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; results are ordinary files
        with os.fdopen(handle, mode, **open_options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_atomic(payload, path):
    """``torch.save`` through ``atomic_write``.  torch's zip writer reports a failed write (a full disk, a file-size
    limit) as a ``RuntimeError`` raised while handling the ``OSError``: that is a ``WriteError`` too."""
    import torch  # here, not above: a plan asks this module to check a name, and torch takes seconds to import

    with atomic_write(path, "wb") as file:
        try:
            torch.save(payload, file)
        except RuntimeError as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, OSError):
                raise cause from None
            raise OSError(errno.EIO, f"torch could not write it ({str(error).strip().splitlines()[0]})") from None


def json_safe(value):
    """``value`` with every NaN or infinity as None (JSON's null): strict parsers reject bare ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json_atomic(payload, path):
    """Indented, strict JSON (NaN as null) through ``atomic_write``."""
    with atomic_write(path) as file:
        file.write(json.dumps(json_safe(payload), indent=1, default=str, allow_nan=False) + "\n")


def save_svg(figure, path):
    """A matplotlib figure as SVG through ``atomic_write``."""
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="svg")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_folders(destination):
    """Staging and replaced folders of ``destination`` left by a killed ``staged_folder`` (their process gone)."""
    for folder in Path(destination).parent.glob(f".{Path(destination).name}.*-*-*"):
        parts = folder.name.rsplit("-", 2)
        if folder.is_dir() and parts[-2].isdigit() and parts[0].endswith((".staging", ".old")) \
                and not _alive(int(parts[-2])):
            shutil.rmtree(folder, ignore_errors=True)


DATASET_MARKER = ".cce-dataset"  # in every dataset folder data_split.py writes: --force replaces only these
SPLIT_NAMES = ("train", "valid", "test")


def made_by_this_project(folder):
    """Whether ``folder`` is a dataset this project wrote: a real folder (not a link) holding ``DATASET_MARKER``, or
    (datasets written before the marker) a train/ folder; ``foreign_entries`` says whether anything else is in it."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    return (folder / DATASET_MARKER).is_file() or (folder / "train").is_dir()


def foreign_entries(folder):
    """The entries of a dataset folder that this project does not write (hidden ones included: a ``.git`` is not
    ours), sorted: ``--force`` deletes a folder only when there are none."""
    ours = {*SPLIT_NAMES, ".cache", DATASET_MARKER}
    return sorted(entry.name for entry in Path(folder).iterdir()
                  if entry.name not in ours or (entry.name != DATASET_MARKER and not entry.is_dir())
                  or entry.is_symlink())


@contextlib.contextmanager
def staged_folder(destination, force=False):
    """Yield an empty dataset folder beside ``destination`` that replaces it only when the block succeeds.

    An existing ``destination`` is kept unless ``force``, and even then only a dataset this project made, holding
    nothing else, is replaced (``made_by_this_project``, ``foreign_entries``); a failure or Ctrl-C leaves it untouched.  The swap is two renames (the old
    folder aside, the new one in place), so ``destination`` is never half-deleted: a kill between them leaves the
    previous folder whole as ``.<name>.old-<pid>-*`` beside it.  The new folder gets ``DATASET_MARKER`` and the
    permissions the user's umask gives a new folder.
    """
    destination = Path(destination)
    if os.path.lexists(destination):
        if not force:
            raise UserError(f"{destination} already exists; pass --force to replace it")
        if destination.is_symlink():
            raise UserError(f"{destination} is a symbolic link (to {os.path.realpath(destination)}); --force replaces "
                            "only a folder this project made, never a link: remove the link or choose another name")
        if not made_by_this_project(destination):
            raise UserError(f"{destination} is not a dataset this project made (no {DATASET_MARKER}, no train/); "
                            "--force replaces only those: move it away or choose another name")
        foreign = foreign_entries(destination)
        if foreign:
            raise UserError(f"{destination} holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, which "
                            "this project did not write; --force would delete them with it: move them away first")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_folders(destination)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-{os.getpid()}-", dir=destination.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700: a dataset is an ordinary folder
        (staging / DATASET_MARKER).write_text("written by data_split.py; --force may replace this folder\n")
    except OSError as error:
        raise WriteError(f"cannot write {destination}: {error.strerror}") from None
    try:
        yield staging
        if destination.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-{os.getpid()}-", dir=destination.parent))
            os.replace(destination, old)
            try:
                os.rename(staging, destination)
            except BaseException:
                os.replace(old, destination)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(destination)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise WriteError(f"cannot write {destination}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------- safe loading

def load_checkpoint(path, map_location="cpu", required=()):
    """Load with ``weights_only=True``: a dict with text keys (and the ``required`` ones), or a ``UserError``.

    A file that carries code, is not a torch file (text, a truncated download) or holds something else (a bare
    tensor, a list, a dict keyed by numbers) is refused in one line.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(4)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if not header.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip archive (or, long ago, a pickle)
        raise UserError(f"refusing to load {path}: it is not a file torch.save wrote (text, an image, or another "
                        "format)")
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols; we refuse those files anyway
            state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError, IndexError,
            KeyError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"refusing to load {path}: it is not a plain weights checkpoint ({reason[:200]})") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        what = type(state).__name__ if not isinstance(state, dict) else "a dict with non-text keys"
        raise UserError(f"refusing to load {path}: it holds {what}, not a checkpoint (a dict of named entries)")
    missing = [key for key in required if key not in state]
    if missing:
        raise UserError(f"{path} is not a checkpoint of a run of this project (it lacks {', '.join(missing)})")
    return state


def load_weights(path):
    """A state dict file: safetensors (known by its header: a length, then a JSON object), else a torch.save file
    read as ``load_checkpoint`` reads it; anything that could run code is refused in one line (``UserError``)."""
    try:
        with open(path, "rb") as file:
            header = file.read(9)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if len(header) < 9 or header[8:9] != b"{":
        return load_checkpoint(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"refusing to load {path}: it is not a readable safetensors file ({reason[:200]})") from None
