"""Shared fixtures: tiny image-folder datasets built in tmp_path, runs trained once per session, and two ways to
run an entry script: in this process (``call``, fast) or as a real process (``run``, for signals, exit paths
and the shell)."""
import contextlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    """One thread per test process, and per process a test starts (they inherit the variable): pytest-xdist runs a
    worker per core (pytest.ini), and two workers each with a thread per core wait for each other more than they
    compute (tiny networks train 2-4 times slower so)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

CLASSES = ("cat", "dog", "fox")
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 40, 220))


def script(name):
    """Import a numbered entry script (e.g. ``1_train``) as a module."""
    return importlib.import_module(name)


def run(name, *args, cwd, env=None, timeout=300):
    """Run ``ROOT/name`` with ``args`` in ``cwd`` as a real process; returns the CompletedProcess."""
    command = [sys.executable, str(ROOT / name), *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})})


def call(name, *args, cwd):
    """Run entry script ``name`` (``1_train.py``) in this process as its command line would, in ``cwd``: exit
    status, stdout and stderr (warnings as the command line prints them) of a ``CompletedProcess``."""
    from utils import run_cli

    module = script(name.removesuffix(".py"))
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)
        status = run_cli(module.main, module.get_args_parser(), [str(arg) for arg in args])
    shown = "".join(f"warning: {warning.message}\n" for warning in caught)
    return subprocess.CompletedProcess([name, *args], status, stdout.getvalue(), shown + stderr.getvalue())


def class_image(label, rng, size=16):
    """A noisy image whose colour says its class, so tiny networks learn it within an epoch."""
    pixels = np.clip(np.array(COLOURS[label]) + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
    pixels[rng.integers(0, size), :, :] = 255  # a random stripe, so augmentation matters a little
    return pixels


def make_dataset(root, name="tiny", counts=None, splits=("train", "valid", "test"), size=16, seed=0):
    """``root/name/<split>/<class>/`` with mixed PNG/JPEG, a grayscale, an RGBA and a palette image,
    plus files that must be skipped (``.DS_Store``, ``notes.txt``)."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train": (12, 8, 4), "valid": (6, 6, 6), "test": (5, 5, 5)}
    for split in splits:
        for label, (cls, n) in enumerate(zip(CLASSES, counts[split])):
            folder = root / name / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = Image.fromarray(class_image(label, rng, size))
                if i == 1:
                    image.convert("L").convert("RGB").convert("L").save(folder / f"{i}_gray.png")
                elif i == 2:
                    image.convert("RGBA").save(folder / f"{i}_rgba.png")
                elif i == 3:
                    image.convert("P").save(folder / f"{i}_palette.gif")
                elif i % 2:
                    image.save(folder / f"{i}.jpg", quality=95)
                else:
                    image.save(folder / f"{i}.png")
            (folder / ".DS_Store").write_bytes(b"\x00\x01junk")
            (folder / "notes.txt").write_text("not an image")
    return root / name


@pytest.fixture
def workdir(tmp_path):
    """A working folder with a_datasets/tiny and an empty logs/."""
    make_dataset(tmp_path / "a_datasets")
    (tmp_path / "logs").mkdir()
    return tmp_path


FAST = ["--model_index=41", "--dataset=tiny", "--height=16", "--width=16", "--batchsize=8",
        "--lr=0.05", "--seed=0", "--lrstep", "1", "1"]

# The runs trained once per session: 2 epochs of FAST with a warm-up, one per objective below.
TRAINED_FLAGS = [*FAST, "--epochs=2", "--warmup", "--ccegamma=1"]
TRAINED_OBJECTIVES = {"ERM": [], "CCE": [], "COT": [], "FL": [], "CB": [], "LDAM": ["--drw"], "BS": [], "LA": [], "LAS": []}


def built_once(tmp_path_factory, name, build):
    """A folder that ``build(folder)`` fills once per test session: pytest-xdist's workers of one session share it
    (the first to ask builds it under a lock, the others wait for it).  Tests only read it, or take a copy."""
    session = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if session is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / f"{name}-{session}"
    built = folder.with_name(f"{folder.name}.built")
    with FileLock(f"{folder}.lock"):
        if not built.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed left half-built
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


def train_every_objective(root):
    make_dataset(root / "a_datasets")
    (root / "logs").mkdir()
    printed = {}
    for objective, extra in TRAINED_OBJECTIVES.items():
        result = call("1_train.py", *TRAINED_FLAGS, f"--objective={objective}", *extra, cwd=root)
        assert result.returncode == 0, result.stderr
        printed[objective] = result.stdout
    (root.parent / f"{root.name}.printed.json").write_text(json.dumps(printed))


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory):
    """A working folder with a_datasets/tiny and one finished run per objective of ``TRAINED_OBJECTIVES``, and what
    each run printed; trained once per test session (``built_once``).  Never changed: tests take a copy
    (``trained``)."""
    root = built_once(tmp_path_factory, "trained", train_every_objective)
    return root, json.loads((root.parent / f"{root.name}.printed.json").read_text())


@pytest.fixture
def trained(trained_once, tmp_path):
    """A private copy of the session's trained working folder (a_datasets/tiny, logs/ with one run per objective)."""
    shutil.copytree(trained_once[0], tmp_path / "w")
    return tmp_path / "w"


def run_dir_of(root, objective="ERM", model="SimpleCNN", dataset="tiny"):
    """The only run folder of one objective."""
    (run_dir,) = (root / "logs" / model / dataset / objective).iterdir()
    return run_dir


def checkpoint_accuracy(workdir, state):
    """Top-1 (%) of a checkpoint's weights on tiny's valid split, evaluated in this process."""
    import torch

    import loader
    from get_model import get_model
    model = get_model(state["model_index"])(len(state["classes"]))
    model.load_state_dict(state["model"])
    split = loader.load_splits(workdir / "a_datasets", "tiny")["valid"]
    stream = loader.BatchStream(split, 16, 16, 8, train=False, device="cpu", progress=False)
    stream.set_normalization(state["mean"], state["std"])
    from runtime import Runtime
    result = script("1_train").evaluate(model, torch.nn.CrossEntropyLoss(), stream, Runtime())
    return 100 * (result["predictions"] == result["targets"]).mean()


def project_files(suffix=".py"):
    """The project's own files ending in ``suffix``: what git tracks (and what it would add), never a virtual
    environment, build or cache folder inside the checkout; outside git, a walk that skips hidden folders and
    any folder holding a ``pyvenv.cfg``."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        environments = {path.parent for path in ROOT.glob("*/pyvenv.cfg")}  # an environment git does not ignore
        return sorted(ROOT / name for name in listed if name.endswith(suffix) and (ROOT / name).is_file()
                      and not environments & set((ROOT / name).parents))
    except (OSError, subprocess.CalledProcessError):
        found = []
        for folder, subfolders, files in os.walk(ROOT):
            subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "__pycache__"
                             and not (Path(folder) / name / "pyvenv.cfg").exists()]
            found += [Path(folder) / name for name in files if name.endswith(suffix)]
        return sorted(found)


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*"))


# The slowest tests (whole plans as real processes, the tables' regeneration: half a minute to a minute each) start
# first, longest first, and pytest-xdist hands tests out one at a time (--maxschedchunk=1, pytest.ini), so each goes
# to whichever worker is free and the short tests fill the workers around them instead of waiting behind them at
# the end.  The study (``studied``) is built by the first; the session's trained runs (``trained_once``) by the third,
# which the other worker starts meanwhile (a worker that asks for a folder ``built_once`` is building waits for it).
SLOW_FIRST = ("test_report.py::test_the_report_is_one_self_contained_page", "test_run_sh.py::test_a_run_stopped",
              "test_train.py::test_training_writes_the_documented_files", "test_tables.py::test_the_committed_tables",
              "test_run_sh.py::test_plan_end_to_end", "test_run_sh.py::test_a_complete_run",
              "test_method_contract.py::test_a_toy_method", "test_docs.py::test_every_documented",
              "test_resume.py::test_sigkill", "test_run_sh.py", "test_distributed.py",
              "test_hostile.py::test_a_real_full_disk")


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(f"tests/{prefix}")),
                    len(SLOW_FIRST))
    items.sort(key=rank)  # stable: within a rank, collection order
