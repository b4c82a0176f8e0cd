"""What a hostile or unlucky user tries, one case a line: each gives a correct result or one ``error:`` line with
exit status 2, nothing runs that a file smuggles in, and no earlier result is lost.  A new surface gets its rows
here."""
import json
import os
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FAST, ROOT, TRAINED_FLAGS, call, make_dataset, run_dir_of

RUN = ["--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest"]


class Payload:
    """Unpickling this runs ``touch pwned``."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def make_raw(root):
    """``root/c_original_dataset/raw/<class>/<images>``: tiny's training images, unsplit."""
    make_dataset(root / "source", name="raw", splits=("train",))
    (root / "c_original_dataset").mkdir()
    shutil.move(root / "source" / "raw" / "train", root / "c_original_dataset" / "raw")
    shutil.rmtree(root / "source")


def one_error_line(result, pattern=""):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert pattern in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- files passed where a checkpoint belongs

NOT_CHECKPOINTS = {
    "text": lambda path: path.write_text("just some text\n"),
    "bare tensor": lambda path: torch.save(torch.ones(3), path),
    "list": lambda path: torch.save([torch.ones(2), 3], path),
    "integer keys": lambda path: torch.save({0: torch.ones(2), 1: torch.zeros(2)}, path),
    "pickled code": lambda path: torch.save({"model": {}, "hook": Payload()}, path),
    "truncated": lambda path: path.write_bytes(b"PK\x03\x04" + b"\x00" * 20),
}


@pytest.mark.parametrize("content", sorted(NOT_CHECKPOINTS))
@pytest.mark.parametrize("where", ["2_test", "predict", "resume", "pretrained"])
def test_a_file_that_is_not_a_checkpoint_is_one_error_line(trained, content, where):
    run_dir = run_dir_of(trained)
    target = {"2_test": next(run_dir.glob("[0-9]*.pth")), "predict": next(run_dir.glob("[0-9]*.pth")),
              "resume": run_dir / "last.pth", "pretrained": trained / "weights.pth"}[where]
    NOT_CHECKPOINTS[content](target)
    command = {"2_test": ("2_test.py", *RUN), "resume": ("1_train.py", f"--resume={run_dir}", "--epochs=3"),
               "predict": ("predict.py", *RUN, "--images", "a_datasets/tiny/test"),
               "pretrained": ("1_train.py", *FAST, "--pretrained=weights.pth")}[where]
    one_error_line(call(*command, cwd=trained), pattern=str(target.relative_to(trained)))
    assert not (trained / "pwned").exists()


def test_hostile_imagenet_weights_in_the_hub_cache_are_refused(tmp_path, monkeypatch):
    """The README tells offline users to copy ImageNet weights into the torch hub cache by hand: a file there
    is read with weights_only=True like any other."""
    import torchvision.models as models
    make_dataset(tmp_path / "a_datasets")
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    url = models.get_model_weights("resnet18").DEFAULT.url
    torch.save({"fc.weight": torch.ones(1), "payload": Payload()}, cache / url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    result = call("1_train.py", *FAST, "--model_index=9", "--height=32", "--width=32", "--pretrained", cwd=tmp_path)
    one_error_line(result, "refusing to load")
    assert not (tmp_path / "pwned").exists()


def test_no_weight_file_is_unpickled_without_weights_only():
    """Every torch.load of the project says weights_only=True; nothing loads through torch.hub or torchvision's
    weights API (which unpickle without it)."""
    for path in [*ROOT.glob("*.py"), *ROOT.glob("b_models/*.py"), *ROOT.glob("bench/*.py")]:
        text = path.read_text()
        for pattern in ("load_state_dict_from_url", "get_state_dict(", "weights_only=False", "pickle.load("):
            assert pattern not in text, f"{path.name}: {pattern}"
        assert text.count("torch.load(") == text.count("weights_only=True)"), path.name


# ---------------------------------------------------------------- output paths

@pytest.mark.parametrize("target", ["/dev/null", "symlink", "fifo", "folder", ".", "/", ""])
def test_predict_out_never_replaces_what_is_not_a_regular_file(trained, target):
    (trained / "kept.txt").write_text("precious\n")
    if target == "symlink":
        os.symlink(trained / "kept.txt", trained / "symlink")
    elif target == "fifo":
        os.mkfifo(trained / "fifo")
    elif target == "folder":
        (trained / "folder").mkdir()
    result = call("predict.py", *RUN, "--images", "a_datasets/tiny/test", f"--out={target}", cwd=trained)
    one_error_line(result, "--out")
    assert (trained / "kept.txt").read_text() == "precious\n"
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    if target == "symlink":
        assert (trained / "symlink").is_symlink()
    assert not list(trained.glob(".*.tmp"))


@pytest.mark.parametrize("flag", ["--markdown", "--plot"])
def test_compare_outputs_in_an_unwritable_place(trained, flag):
    (trained / "blocked").write_text("a file where a folder should be")
    result = call("compare.py", "--dataset=tiny", "--model_index=41", f"{flag}=blocked/out", cwd=trained)
    one_error_line(result, f"cannot write {flag} blocked/out")


def test_data_split_into_an_unwritable_place(tmp_path):
    make_raw(tmp_path)
    (tmp_path / "blocked").write_text("a file where a folder should be")
    one_error_line(call("data_split.py", "--dataset=raw", "--out_dir=blocked/a_datasets", cwd=tmp_path),
                   "cannot write blocked/a_datasets/raw")


# ---------------------------------------------------------------- numbers that are not numbers

BAD_NUMBERS = [
    ("data_split.py", ["--dataset=raw", "--imbalance_ratio=nan"], "--imbalance_ratio: must be a finite number"),
    ("data_split.py", ["--dataset=raw", "--seed=-1"], "--seed: must be >= 0"),
    ("2_test.py", [*RUN, "--seed=-1"], "--seed: must be >= 0"),
    ("1_train.py", [*FAST, f"--seed={2**70}"], "--seed: must be <= 4294967295"),
    ("1_train.py", [*FAST, "--lr=inf"], "--lr: must be a finite number"),
    ("1_train.py", [*FAST, "--lr=nan"], "--lr: must be a finite number"),
    ("1_train.py", [*FAST, "--cb_beta=1"], "--cb_beta: must be < 1"),
    ("1_train.py", [*FAST, "--label_smoothing=1.5"], "--label_smoothing: must be <= 1"),
    ("1_train.py", [*FAST, "--momentum=-0.1"], "--momentum: must be >= 0"),
    ("2_test.py", [*RUN, "--posthoc_tau=nan"], "--posthoc_tau must be a number from 0 to 10"),
    ("2_test.py", [*RUN, "--posthoc_tau=inf"], "--posthoc_tau must be a number from 0 to 10"),
    ("2_test.py", [*RUN, "--posthoc_tau=1e308"], "--posthoc_tau must be a number from 0 to 10"),
    ("2_test.py", [*RUN, "--posthoc_tau=-1"], "--posthoc_tau must be a number from 0 to 10"),
]


@pytest.mark.parametrize("script, argv, message", BAD_NUMBERS, ids=[f"{s} {a[-1]}" for s, a, _ in BAD_NUMBERS])
def test_nonsense_numbers_are_refused(trained, script, argv, message):
    before = sorted(str(path) for path in (trained / "logs").rglob("*"))
    one_error_line(call(script, *argv, cwd=trained), message)
    assert sorted(str(path) for path in (trained / "logs").rglob("*")) == before


def test_evaluating_at_another_size_is_refused_and_keeps_the_results(trained):
    run_dir = run_dir_of(trained)
    assert call("2_test.py", *RUN, cwd=trained).returncode == 0
    before = (run_dir / "test_metrics.json").read_bytes()
    one_error_line(call("2_test.py", *RUN, "--height=1", "--width=1", cwd=trained), "differ from the 16x16 images")
    assert (run_dir / "test_metrics.json").read_bytes() == before
    assert json.loads(before)["image_size"] == [16, 16]


def test_predict_with_no_decodable_image_fails(trained):
    (trained / "junk").mkdir()
    (trained / "junk" / "a.png").write_bytes(b"not a png")
    result = call("predict.py", *RUN, "--images", "junk", cwd=trained)
    assert result.returncode == 2 and "none of the 1 image(s) could be decoded" in result.stderr
    assert not (trained / "predictions.csv").exists()


# ---------------------------------------------------------------- pixels

def test_sixteen_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    import loader
    values = np.linspace(0, 255, 64).astype(np.uint8).reshape(8, 8)
    Image.fromarray(values, mode="L").save(tmp_path / "eight.png")
    Image.fromarray(values.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    Image.fromarray(values.astype(np.float32) / 255, mode="F").save(tmp_path / "float.tif")
    eight = loader.decode_image(tmp_path / "eight.png", 8, 8)
    for name in ("sixteen.png", "float.tif"):
        assert (loader.decode_image(tmp_path / name, 8, 8).int() - eight.int()).abs().max() <= 1, name
    with Image.open(tmp_path / "sixteen.png") as image:
        assert image.mode.startswith("I")  # Pillow opens it as 16-bit: this is the case being tested


def test_a_bad_image_on_the_file_path_is_one_line_without_worker_traceback(trained):
    (trained / "a_datasets" / "tiny" / "train" / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    result = call("1_train.py", *FAST, "--epochs=1", "--cache_mb=0", "--workers=1", cwd=trained)
    one_error_line(result, "cannot decode image")
    assert "bad.png" in result.stderr and "--skip_bad_images" in result.stderr and "worker" not in result.stderr


# ---------------------------------------------------------------- benchmark files

def test_labels_that_do_not_match_the_images_are_refused(tmp_path):
    from test_benchmarks import fake_mnist_raw, write_idx
    fake_mnist_raw(tmp_path / "data")
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.repeat(np.arange(10), 29))  # 290 labels for 300 images
    result = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download", cwd=tmp_path)
    one_error_line(result, "has 300 images but 290 labels")
    assert not (tmp_path / "a_datasets").exists()


def test_a_truncated_unpacked_idx_file_is_unpacked_again_or_named(tmp_path):
    from test_benchmarks import fake_mnist_raw
    fake_mnist_raw(tmp_path / "data")
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download",
                cwd=tmp_path).returncode == 0
    unpacked = raw / "train-images-idx3-ubyte"
    unpacked.write_bytes(unpacked.read_bytes()[:1000])
    again = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download", "--force",
                 cwd=tmp_path)
    assert again.returncode == 0 and "unpacking" in again.stderr  # repaired from the archive
    unpacked.write_bytes(unpacked.read_bytes()[:1000])
    (raw / "train-images-idx3-ubyte.gz").unlink()
    result = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download", "--force",
                  cwd=tmp_path)
    one_error_line(result, "train-images-idx3-ubyte is truncated or damaged")


# ---------------------------------------------------------------- results on disk

def evaluated(trained):
    run_dir = run_dir_of(trained)
    assert call("2_test.py", *RUN, cwd=trained).returncode == 0
    return run_dir


@pytest.fixture(scope="module")
def evaluated_once(trained_once, tmp_path_factory):
    """The session's trained runs with ERM evaluated on test, once for this file (never changed)."""
    root = tmp_path_factory.mktemp("evaluated") / "w"
    shutil.copytree(trained_once[0], root)
    evaluated(root)
    return root


@pytest.fixture
def trained_evaluated(evaluated_once, tmp_path):
    """A private copy of ``evaluated_once``: the trained working folder with ERM evaluated."""
    shutil.copytree(evaluated_once, tmp_path / "w", symlinks=True)
    return tmp_path / "w"


@pytest.mark.parametrize("damage", ["empty npz", "garbage npz", "npz without probs", "garbage json", "json list",
                                    "npz from another evaluation"])
def test_damaged_results_are_named_with_how_to_regenerate_them(trained_evaluated, damage):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    npz, metrics = run_dir / "test_predictions.npz", run_dir / "test_metrics.json"
    if damage == "empty npz":
        npz.write_bytes(b"")
    elif damage == "garbage npz":
        npz.write_bytes(b"PK\x03\x04 broken zip")
    elif damage == "npz without probs":
        np.savez(npz, paths=np.array(["a"]), targets=np.array([0]))
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "predictions_sha256": None}))
    elif damage == "garbage json":
        metrics.write_text('{"acc": 5')
    elif damage == "json list":
        metrics.write_text("[1, 2]")
    else:
        saved = dict(np.load(npz))
        np.savez_compressed(npz, **{**saved, "probs": saved["probs"][:, ::-1].copy()})
    line = one_error_line(call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                               cwd=trained))
    assert str(run_dir.relative_to(trained)) in line and "run python 2_test.py on" in line


def test_metrics_json_is_strict_json(trained_evaluated):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    text = (run_dir / "test_metrics.json").read_text()
    assert "NaN" not in text and json.loads(text)["many_acc"] is None  # tiny has no many-shot class: null
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))


def test_a_group_never_mixes_tested_and_untested_runs(trained_evaluated):
    trained = trained_evaluated
    # the session's ERM run is evaluated on test/ (trained_evaluated)
    assert call("1_train.py", *TRAINED_FLAGS, "--seed=5", cwd=trained).returncode == 0  # its twin, not evaluated
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "--datetime=all",
                  cwd=trained)
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[1].split()
    assert row[1:3] == ["1", "test"]
    assert "1 run(s) not evaluated like the rest (test) are left out" in result.stderr


def test_paired_refuses_two_runs_of_one_seed_and_names_unpaired_ones(trained):
    logs = trained / "logs" / "SimpleCNN" / "tiny"
    erm = run_dir_of(trained, "ERM")
    shutil.copytree(erm, logs / "ERM" / "2030-01-01-00-00-00")  # a second ERM run with the same seed
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                  "--datetime=all", "--paired", cwd=trained)
    one_error_line(result, "ERM has two runs with seed 0")
    shutil.rmtree(logs / "ERM" / "2030-01-01-00-00-00")
    cce = run_dir_of(trained, "CCE")
    config = json.loads((cce / "config.json").read_text())
    shutil.copytree(cce, logs / "CCE" / "2030-01-01-00-00-00")
    (logs / "CCE" / "2030-01-01-00-00-00" / "config.json").write_text(
        json.dumps({**config, "args": {**config["args"], "seed": 7}}))
    for run in (erm, cce, logs / "CCE" / "2030-01-01-00-00-00"):
        name = run.parent.name
        assert call("2_test.py", "--model_index=41", "--dataset=tiny", f"--objective={name}",
                    f"--datetime={run.name}", cwd=trained).returncode == 0
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                  "--datetime=all", "--paired", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "note: 1 run(s) of CCE ccegamma=1 have no partner with the same seed" in result.stdout


def test_a_partial_valid_csv_row_is_not_an_epoch(trained):
    import results as compare
    run_dir = run_dir_of(trained)
    with open(run_dir / "valid.csv", "a") as file:
        file.write("2,0.1,99")  # a row cut short by a crash
    assert [row["epoch"] for row in compare.valid_rows(run_dir)] == ["0", "1"]
    assert compare.checkpoint_row(run_dir)["acc"] != "99"


def test_predictions_csv_cells_are_not_spreadsheet_formulas(trained):
    for split in ("train", "valid", "test"):
        folder = trained / "a_datasets" / "tiny" / split
        (folder / "fox").rename(folder / "=SUM(1+1)")
    (trained / "a_datasets" / "tiny" / "test" / "=SUM(1+1)" / "0.png").rename(
        trained / "a_datasets" / "tiny" / "test" / "=SUM(1+1)" / "@cmd.png")
    assert call("1_train.py", *FAST, "--epochs=1", cwd=trained).returncode == 0
    result = call("predict.py", *RUN, "--images", "a_datasets/tiny/test", cwd=trained)
    assert result.returncode == 0, result.stderr
    text = (trained / "predictions.csv").read_text()
    assert "'=SUM(1+1)" in text and not any(cell.startswith(("=", "@")) for line in text.splitlines()
                                             for cell in line.split(","))


# ---------------------------------------------------------------- kills and full disks

def test_a_full_disk_during_training_is_one_line_with_the_resume_command(trained, monkeypatch):
    import runs as runs_module
    from utils import WriteError
    original, saved = runs_module.save_atomic, []

    def disk_full_on_the_third(payload, path):
        saved.append(path)
        if len(saved) == 3:
            raise WriteError(f"cannot write {path}: No space left on device")
        return original(payload, path)

    monkeypatch.setattr(runs_module, "save_atomic", disk_full_on_the_third)
    result = call("1_train.py", *FAST, "--epochs=3", "--seed=9", cwd=trained)
    line = one_error_line(result, "No space left on device during epoch 2")
    run_dir = saved[0].parent  # relative to the working folder, as --logs_dir is
    assert f"continue with: python 1_train.py --resume {run_dir}" in line
    assert torch.load(trained / run_dir / "last.pth", weights_only=True)["epoch"] == 0  # the first epoch's files are whole


def test_an_interrupted_force_rebuild_keeps_the_old_split(tmp_path, monkeypatch):
    import utils
    make_raw(tmp_path)
    assert call("data_split.py", "--dataset=raw", cwd=tmp_path).returncode == 0
    split = tmp_path / "a_datasets" / "raw"
    before = sorted(str(p.relative_to(split)) for p in split.rglob("*"))
    real_rename = os.rename

    def interrupted(source, target):  # Ctrl-C right as the new split would move in
        if ".staging-" in str(source):
            raise KeyboardInterrupt
        return real_rename(source, target)

    monkeypatch.setattr(utils.os, "rename", interrupted)
    result = call("data_split.py", "--dataset=raw", "--seed=5", "--force", cwd=tmp_path)
    assert result.returncode == 130
    assert sorted(str(p.relative_to(split)) for p in split.rglob("*")) == before
    assert not [p.name for p in (tmp_path / "a_datasets").iterdir() if p.name.startswith(".")]


def test_staging_folders_of_killed_rebuilds_are_cleaned(tmp_path):
    make_raw(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "a_datasets" / f".raw.staging-{dead.pid}-abc123" / "train").mkdir(parents=True)
    (tmp_path / "a_datasets" / f".raw.staging-{os.getpid()}-live99").mkdir()  # a live process's: kept
    assert call("data_split.py", "--dataset=raw", cwd=tmp_path).returncode == 0
    hidden = sorted(p.name for p in (tmp_path / "a_datasets").iterdir() if p.name.startswith("."))
    assert hidden == [f".raw.staging-{os.getpid()}-live99"]


def test_a_kill_between_2_test_s_two_files_is_detected(trained_evaluated, monkeypatch):
    """Each result file is replaced atomically; a kill between the predictions and the metrics leaves a new
    predictions file beside the old metrics, which compare.py recognises rather than mixing them."""
    trained = trained_evaluated
    import importlib
    run_dir = run_dir_of(trained)
    old_metrics = (run_dir / "test_metrics.json").read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    checkpoint = next(run_dir.glob("[0-9]*.pth"))
    state = torch.load(checkpoint, weights_only=True)
    state["model"]["fc.bias"] += torch.tensor([3.0, 0.0, -3.0])  # other weights: other predictions
    torch.save(state, checkpoint)
    monkeypatch.setattr(importlib.import_module("2_test"), "write_json_atomic", killed)
    assert call("2_test.py", *RUN, cwd=trained).returncode == 130
    assert (run_dir / "test_metrics.json").read_bytes() == old_metrics
    monkeypatch.undo()
    line = one_error_line(call("compare.py", "--runs", run_dir, cwd=trained), "come from different evaluations")
    assert "run python 2_test.py on" in line


def test_a_split_left_aside_by_a_killed_rebuild_is_pointed_to(trained):
    tiny = trained / "a_datasets" / "tiny"
    tiny.rename(trained / "a_datasets" / ".tiny.old-999999-abc123")  # killed between the two renames
    line = one_error_line(call("1_train.py", *FAST, cwd=trained), "dataset 'tiny' not found")
    assert ".tiny.old-999999-abc123: rename it back or rebuild it" in line


def test_2_test_does_not_suggest_a_flag_it_does_not_have(trained):
    (trained / "a_datasets" / "tiny" / "test" / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    line = one_error_line(call("2_test.py", *RUN, cwd=trained), "cannot decode image")
    assert line.endswith("delete or replace it") and "--skip_bad_images" not in line


# ---------------------------------------------------------------- paths that would leave their folder (#25)

def snapshot(folder):
    """Every file under ``folder`` with its bytes (and every folder), to show nothing there changed."""
    return {str(path.relative_to(folder)): (path.read_bytes() if path.is_file() and not path.is_symlink() else None)
            for path in sorted(folder.rglob("*"))}


def decoys(root):
    """A folder outside a_datasets/ and another dataset inside it, each with a file that must survive."""
    (root / "victim").mkdir()
    (root / "victim" / "precious.txt").write_text("do not delete\n")
    (root / "a_datasets" / "other" / "train" / "a").mkdir(parents=True)
    (root / "a_datasets" / "other" / "train" / "a" / "keep.txt").write_text("another dataset\n")
    return {"victim": snapshot(root / "victim"), "a_datasets": snapshot(root / "a_datasets")}


ESCAPING_NAMES = ["../../victim", "../victim", ".", "..", "sub/dir", "/ABS/victim", "", ".hidden"]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
@pytest.mark.parametrize("mode", ["--dataset", "--from_list"])
def test_out_name_never_leaves_the_datasets_folder(tmp_path, name, mode):
    from test_split_lists import make_lists
    make_raw(tmp_path)
    make_lists(tmp_path)
    before = decoys(tmp_path)
    name = name.replace("/ABS", str(tmp_path))
    if mode == "--dataset":
        argv = ["--dataset=raw", f"--out_name={name}", "--force"]
    else:
        argv = ["--from_list", "--train_list=train.txt", "--valid_list=valid.txt", "--test_list=test.txt",
                "--images=images", f"--out_name={name}", "--force"]
    one_error_line(call("data_split.py", *argv, cwd=tmp_path), "--out_name")
    assert snapshot(tmp_path / "victim") == before["victim"] and snapshot(tmp_path / "a_datasets") == before["a_datasets"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a_datasets", "c_original_dataset", "images", "victim",
                                                                 "train.txt", "valid.txt", "test.txt"])


@pytest.mark.parametrize("name", ["../raw", "raw/../../x", "/etc"])
def test_a_dataset_name_is_a_name_everywhere(trained, name):
    for script, argv in (("1_train.py", [*FAST[:1], f"--dataset={name}", *FAST[2:]]),
                         ("2_test.py", ["--model_index=41", f"--dataset={name}", "--objective=ERM", "--datetime=latest"]),
                         ("compare.py", ["--model_index=41", f"--dataset={name}"]),
                         ("data_split.py", [f"--dataset={name}"])):
        one_error_line(call(script, *argv, cwd=trained), "--dataset")


def outside_file(tmp_path):
    (tmp_path / "outside").mkdir()
    secret = tmp_path / "outside" / "secret.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(secret)
    return secret


@pytest.mark.parametrize("line", ["../outside/secret.jpg", "/ABS", "train/c00/../../../outside/secret.jpg"])
@pytest.mark.parametrize("copy", [False, True])
def test_a_list_line_never_reaches_outside_images(tmp_path, line, copy):
    from test_split_lists import make_lists
    paths = make_lists(tmp_path)
    secret = outside_file(tmp_path)
    line = line.replace("/ABS", str(secret))
    with open(paths["train"], "a") as file:
        file.write(f"{line} 0\n")
    argv = ["--from_list", "--train_list=train.txt", "--valid_list=valid.txt", "--test_list=test.txt", "--images=images",
            "--out_name=lists", *(["--copy"] if copy else [])]
    one_error_line(call("data_split.py", *argv, cwd=tmp_path), "train.txt, line 39")
    assert not (tmp_path / "a_datasets").exists() or not list((tmp_path / "a_datasets").iterdir())


@pytest.mark.parametrize("copy", [False, True])
def test_no_link_inside_images_brings_a_file_from_outside(tmp_path, copy):
    """A link planted inside the image folder that leads out of it: linking to it would read an outside file into
    the dataset as surely as copying it, so both modes refuse it, naming the line."""
    from test_split_lists import make_lists
    paths = make_lists(tmp_path)
    secret = outside_file(tmp_path)
    os.symlink(secret, tmp_path / "images" / "train" / "c00" / "evil.jpg")
    with open(paths["train"], "a") as file:
        file.write("train/c00/evil.jpg 0\n")
    argv = ["--from_list", "--train_list=train.txt", "--valid_list=valid.txt", "--test_list=test.txt", "--images=images"]
    flag = "--copy" if copy else "--images"
    one_error_line(call("data_split.py", *argv, "--out_name=made", *(["--copy"] if copy else []), cwd=tmp_path),
                   f"{flag}: 'train/c00/evil.jpg' is a link to")
    assert not (tmp_path / "a_datasets" / "made").exists()


@pytest.mark.parametrize("copy", [False, True])
def test_a_hard_link_to_a_test_image_is_the_same_image(tmp_path, copy):
    from test_split_lists import make_lists
    paths = make_lists(tmp_path)
    test_image = next(line.split()[0] for line in open(paths["test"]))
    os.link(tmp_path / "images" / test_image, tmp_path / "images" / "train" / "c00" / "hard.jpg")
    with open(paths["train"], "a") as file:
        file.write("train/c00/hard.jpg 0\n")
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=made", *(["--copy"] if copy else []),
                  cwd=tmp_path)
    line = one_error_line(result, "are the same file")
    assert "train/c00/hard.jpg" in line and test_image in line and "hard link" in line


@pytest.mark.parametrize("alias", ["symbolic link", "hard link", "copy", "link outside"])
def test_a_raw_split_counts_one_image_once_and_reads_only_its_folder(tmp_path, alias):
    """c_original_dataset/<name>/: two names for one file (a link, a hard link), the same bytes twice, or a link
    that leads outside the folder are each one error line, and nothing is written."""
    make_raw(tmp_path)
    folder = tmp_path / "c_original_dataset" / "raw" / "cat"
    image = sorted(path for path in folder.iterdir() if path.suffix in (".png", ".jpg"))[0]
    target = tmp_path / "c_original_dataset" / "raw" / "dog" / f"alias{image.suffix}"
    if alias == "symbolic link":
        os.symlink(image, target)
    elif alias == "hard link":
        os.link(image, target)
    elif alias == "copy":
        shutil.copyfile(image, target)
    else:
        os.symlink(outside_file(tmp_path), target.with_suffix(".jpg"))
    result = call("data_split.py", "--dataset=raw", cwd=tmp_path)
    expected = {"symbolic link": "same file", "hard link": "same file", "copy": "same bytes",
                "link outside": "is a symbolic link to"}[alias]
    one_error_line(result, expected)
    assert not (tmp_path / "a_datasets" / "raw").exists()


@pytest.mark.parametrize("foreign", ["train only and .git", "marker and notes", "a link"])
def test_force_never_deletes_what_this_project_did_not_write(tmp_path, foreign):
    make_raw(tmp_path)
    assert call("data_split.py", "--dataset=raw", cwd=tmp_path).returncode == 0
    made = tmp_path / "a_datasets" / "raw"
    if foreign == "train only and .git":
        (made / ".cce-dataset").unlink()
        shutil.rmtree(made / "valid")
        shutil.rmtree(made / "test")
        (made / ".git").mkdir()
        (made / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    elif foreign == "marker and notes":
        (made / "notes.txt").write_text("mine\n")
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "keep.txt").write_text("keep\n")
        shutil.rmtree(made)
        os.symlink(tmp_path / "elsewhere", made)
    before = snapshot(tmp_path)
    line = one_error_line(call("data_split.py", "--dataset=raw", "--force", cwd=tmp_path))
    assert ("symbolic link" in line) if foreign == "a link" else ("did not write" in line)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("spelling", ["train/c00/./train_0_0.jpg", "train//c00/train_0_0.jpg", "train/c00/alias.jpg"])
def test_one_image_spelled_two_ways_is_refused(tmp_path, spelling):
    from test_split_lists import make_lists
    paths = make_lists(tmp_path)
    os.symlink("train_0_0.jpg", tmp_path / "images" / "train" / "c00" / "alias.jpg")
    with open(paths["test"], "a") as file:
        file.write(f"{spelling} 0\n")
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=lists", cwd=tmp_path)
    message = "same file" if "alias" in spelling else "listed in both train and test"
    one_error_line(result, message)


def test_force_replaces_only_a_dataset_this_project_made(tmp_path):
    make_raw(tmp_path)
    (tmp_path / "a_datasets" / "mine").mkdir(parents=True)
    (tmp_path / "a_datasets" / "mine" / "thesis.tex").write_text("years of work\n")
    before = snapshot(tmp_path / "a_datasets")
    one_error_line(call("data_split.py", "--dataset=raw", "--out_name=mine", "--force", cwd=tmp_path),
                   "is not a dataset this project made")
    assert snapshot(tmp_path / "a_datasets") == before
    assert call("data_split.py", "--dataset=raw", cwd=tmp_path).returncode == 0
    made = tmp_path / "a_datasets" / "raw"
    assert (made / ".cce-dataset").is_file() and oct(made.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    assert call("data_split.py", "--dataset=raw", "--seed=3", "--force", cwd=tmp_path).returncode == 0  # ours: replaced


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


LIST_TROUBLE = {
    "a label far beyond the rest": ("train/c00/train_0_0.jpg 99999999999999999999", "more than the 38 training images"),
    "a negative label": ("train/c00/train_0_0.jpg -3", "negative label(s)"),
}


@pytest.mark.parametrize("case", sorted(LIST_TROUBLE))
def test_nonsense_labels_are_one_line(tmp_path, case):
    from test_split_lists import make_lists
    paths = make_lists(tmp_path)
    text = paths["train"].read_text().splitlines()
    line, message = LIST_TROUBLE[case]
    paths["train"].write_text("\n".join([line] + text[1:]) + "\n")
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=lists", cwd=tmp_path)
    one_error_line(result, message)


def test_a_fifo_as_a_list_does_not_hang(tmp_path):
    from test_split_lists import make_lists
    make_lists(tmp_path)
    os.mkfifo(tmp_path / "fifo.txt")
    result = call("data_split.py", "--from_list", "--train_list=fifo.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=lists", cwd=tmp_path)
    one_error_line(result, "fifo.txt is not a regular file")


def test_images_with_one_file_name_in_one_class_all_arrive(tmp_path):
    from test_split_lists import make_lists, photo
    paths = make_lists(tmp_path)
    rng = np.random.default_rng(1)
    for folder in ("extra_a", "extra_b"):
        photo(tmp_path / "images" / folder / "x.jpg", 0, rng)
    photo(tmp_path / "images" / "extra_c" / "40_x.jpg", 0, rng)  # named as a renamed twin would be
    with open(paths["train"], "a") as file:
        file.write("extra_a/x.jpg 0\nextra_b/x.jpg 0\nextra_c/40_x.jpg 0\n")
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=lists", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "a_datasets" / "lists" / "train").rglob("*x.jpg")}
    assert len(names) == 3 and "x.jpg" in names


def test_valid_per_class_with_a_valid_list_is_refused(tmp_path):
    from test_split_lists import make_lists
    make_lists(tmp_path)
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                  "--test_list=test.txt", "--images=images", "--out_name=lists", "--valid_per_class=2", cwd=tmp_path)
    one_error_line(result, "give one of the two")


# ---------------------------------------------------------------- a full disk, made by the operating system (#25)

def file_size_limit(limit):
    """For ``subprocess``: files of this process may grow to ``limit`` bytes; writing past it fails with EFBIG
    (SIGXFSZ ignored), as a full disk fails a write."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def limited(name, *args, cwd, limit):
    command = [sys.executable, str(ROOT / name), *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(limit))


def test_a_real_full_disk_is_one_line_in_training(workdir):
    result = limited("1_train.py", *FAST, "--epochs=2", cwd=workdir, limit=100_000)  # a checkpoint is larger
    line = one_error_line(result, "File too large during epoch 1")
    assert "start the run again" in line
    (run_dir,) = (workdir / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir()
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob("*.pth"))  # nothing half-written


def test_a_real_full_disk_is_one_line_in_evaluation_and_splitting(trained, tmp_path):
    run_dir = run_dir_of(trained)
    one_error_line(limited("2_test.py", *RUN, cwd=trained, limit=100), "test_predictions.npz: File too large")
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / "test_metrics.json").exists()
    make_raw(tmp_path)
    one_error_line(limited("data_split.py", "--dataset=raw", cwd=tmp_path, limit=200), "cannot write a_datasets/raw")
    assert not [p for p in (tmp_path / "a_datasets").iterdir()]


def test_a_killed_2_test_leaves_no_temporary_file(trained):
    import signal
    import time
    run_dir = run_dir_of(trained)
    codes = []
    while 130 not in codes and len(codes) < 4:  # until a signal lands while the results are being written
        for written in run_dir.glob("test_*"):
            written.unlink()
        process = subprocess.Popen([sys.executable, str(ROOT / "2_test.py"), *RUN], cwd=trained,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # SIGTERM as soon as the first result (or its temporary file) appears, the metrics, the TensorBoard record
        # and the figures still to come.  (A fixed wait after the script took over SIGTERM could land after it had
        # finished, in the interpreter's shutdown, where the signal is no longer its own: then it exits 0, and the
        # test tries again.)
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline and not (
                list(run_dir.glob(".*.tmp")) or (run_dir / "test_predictions.npz").exists()):
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        codes.append(process.returncode)
        assert process.returncode in (0, 130) and "Traceback" not in stderr, stderr
        assert not list(run_dir.glob(".*.tmp"))
    assert 130 in codes, codes


# ---------------------------------------------------------------- records that are not what they say (#25)

@pytest.mark.parametrize("args", ['"text"', "[1, 2]", "null"])
def test_a_config_whose_arguments_are_not_a_record_is_one_line(trained, args):
    run_dir = run_dir_of(trained)
    (run_dir / "config.json").write_text('{"args": %s, "environment": {}}' % args)
    one_error_line(call("1_train.py", *FAST, "--epochs=1", "--init_from=latest", cwd=trained), "config.json is damaged")
    one_error_line(call("compare.py", "--dataset=tiny", "--model_index=41", cwd=trained), "config.json is damaged")


@pytest.mark.parametrize("field, value", [("mean", "nonsense"), ("classes", 3), ("std", [0.0, 1.0, 1.0]),
                                          ("image_size", [16, -1]), ("class_counts", [1, 2])])
def test_a_checkpoint_with_nonsense_fields_is_one_line(trained, field, value):
    path = next(run_dir_of(trained).glob("[0-9]*.pth"))
    state = torch.load(path, weights_only=True)
    state[field] = value
    torch.save(state, path)
    one_error_line(call("2_test.py", *RUN, cwd=trained), f"bad {field}")


def test_a_text_file_as_a_checkpoint_says_what_it_is(trained):
    path = next(run_dir_of(trained).glob("[0-9]*.pth"))
    path.write_text("just some text\n")
    one_error_line(call("2_test.py", *RUN, cwd=trained), "it is not a file torch.save wrote")


def test_a_binary_valid_csv_is_one_line(trained):
    (run_dir_of(trained) / "valid.csv").write_bytes(bytes(range(256)) * 4)
    one_error_line(call("compare.py", "--dataset=tiny", "--model_index=41", cwd=trained), "is not a CSV log")


def test_an_edited_metrics_file_is_named_even_without_its_checksum(trained_evaluated):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    metrics.pop("predictions_sha256")
    metrics["balanced_acc"] = 99.9
    (run_dir / "test_metrics.json").write_text(json.dumps(metrics))
    line = one_error_line(call("compare.py", "--runs", run_dir, cwd=trained), "does not agree with its predictions")
    assert "balanced_acc: 99.9 in the file" in line


@pytest.mark.parametrize("key, value", [("few_acc", 99.0), ("many_acc", 99.0), ("medium_acc", 99.0),
                                        ("acc", float("nan")), ("balanced_acc", None)])
def test_every_shown_number_of_a_metrics_file_is_checked(trained_evaluated, key, value):
    """The shot-group accuracies too, and a NaN or a missing accuracy where the predictions give one."""
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    text = (run_dir / "test_metrics.json").read_text()
    metrics = json.loads(text)
    metrics[key] = value
    (run_dir / "test_metrics.json").write_text(json.dumps(metrics))  # NaN written bare, as a hand edit would
    for command in (("compare.py", "--runs", run_dir), ("report.py", "--runs", run_dir, "--out=r.html")):
        one_error_line(call(*command, cwd=trained), f"{key}: {value} in the file")


def test_metrics_without_their_predictions_are_shown_as_unchecked(trained_evaluated):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    (run_dir / "test_predictions.npz").unlink()
    result = call("compare.py", "--runs", run_dir, cwd=trained)
    assert result.returncode == 0 and "has no predictions beside it, so its numbers are shown unchecked" in result.stderr


@pytest.mark.parametrize("field, value", [("mix", '"bogus"'), ("augment", '{"a": 1}'), ("epochs", '"many"'),
                                          ("drw", "1"), ("lrstep", '"11 2 2"')])
def test_a_config_field_of_the_wrong_kind_is_one_line(trained_evaluated, field, value):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    config = json.loads((run_dir / "config.json").read_text())
    config["args"][field] = json.loads(value)
    (run_dir / "config.json").write_text(json.dumps(config))
    for command in (("compare.py", "--runs", run_dir), ("report.py", "--runs", run_dir, "--out=r.html")):
        one_error_line(call(*command, cwd=trained), f"config.json is damaged ({field}:")


def test_a_config_environment_that_is_not_a_record_is_not_shown(trained_evaluated):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    config = json.loads((run_dir / "config.json").read_text())
    config["environment"] = "hand-written"
    (run_dir / "config.json").write_text(json.dumps(config))
    result = call("report.py", "--runs", run_dir, "--out=r.html", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "not recorded" in (trained / "r.html").read_text()


def test_select_on_valid_refuses_a_run_without_validation_rows(trained):
    (run_dir_of(trained, "CCE") / "valid.csv").write_text("epoch,loss,acc,top5acc,lr,balanced_acc\n")
    one_error_line(call("compare.py", "--dataset=tiny", "--model_index=41", "--select_on=valid", cwd=trained),
                   "have no validation balanced accuracy")


@pytest.mark.parametrize("condition, message", [("NOSUCH:lr=0.1", "'NOSUCH' is not an objective"),
                                                ("mixx=null", "'mixx' is not a setting of a run (did you mean mix?)")])
def test_a_where_that_names_nothing_is_refused(trained, condition, message):
    one_error_line(call("compare.py", "--dataset=tiny", "--model_index=41", f"--where={condition}", cwd=trained), message)


def test_where_compares_kinds_as_well_as_values():
    import runs as compare
    assert not compare._matches({"seed": 0}, "seed", False) and compare._matches({"seed": 0}, "seed", 0)
    assert not compare._matches({"drw": True}, "drw", 1) and compare._matches({"drw": True}, "drw", True)


# ---------------------------------------------------------------- second stages that would start wrongly (#25)

SECOND_STAGE_REFUSALS = [
    (["--init_from="], "--init_from is empty"),
    (["--init_from=latest", "--lws", "--reinit_head"], "--reinit_head does not go with it"),
    (["--init_from=latest", "--lws", "--maxnorm=0.1"], "--maxnorm does not go with it"),
    (["--init_from=latest", "--freeze_backbone", "--height=20", "--width=20"], "was trained on 16x16 images, not 20x20"),
    (["--cutout=16"], "--cutout 16 is not smaller than the 16x16 image"),
    (["--eval_resize=100000"], "--eval_resize 100000 is over 4 times"),
    (["--sam_rho=1e308"], "--sam_rho: must be <= 10"),
]


@pytest.mark.parametrize("extra, message", SECOND_STAGE_REFUSALS, ids=[m for _, m in SECOND_STAGE_REFUSALS])
def test_training_that_would_silently_do_something_else_is_refused(trained, extra, message):
    before = snapshot(trained / "logs")
    one_error_line(call("1_train.py", *FAST, "--epochs=1", *extra, cwd=trained), message)
    assert snapshot(trained / "logs") == before


def test_init_from_latest_skips_a_first_stage_that_stopped_early(trained):
    complete = run_dir_of(trained)
    stopped = complete.parent / "2030-01-01-00-00-00"  # newer, and killed after its first epoch of two
    shutil.copytree(complete, stopped)
    config = json.loads((stopped / "config.json").read_text())
    config["args"]["epochs"] = 50
    config.pop("finished", None)
    (stopped / "config.json").write_text(json.dumps(config))
    result = call("1_train.py", *FAST, "--epochs=1", "--init_from=latest", "--freeze_backbone", cwd=trained)
    assert result.returncode == 0, result.stderr
    new = max((trained / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir(), key=lambda run: run.stat().st_mtime_ns)
    assert json.loads((new / "config.json").read_text())["args"]["init_from"].startswith(str(complete.resolve()))


def test_a_resumed_second_stage_keeps_its_start_record(trained, monkeypatch):
    import importlib
    train = importlib.import_module("1_train")
    start = run_dir_of(trained)
    original, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    argv = [*FAST, "--epochs=2", f"--init_from={start}", "--freeze_backbone"]
    assert call("1_train.py", *argv, cwd=trained).returncode == 130
    monkeypatch.undo()
    second = max((trained / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir(), key=lambda run: run.stat().st_mtime_ns)
    assert call("1_train.py", f"--resume={second}", cwd=trained).returncode == 0
    for checkpoint in (second / "last.pth", next(second.glob("[0-9]*.pth"))):
        assert torch.load(checkpoint, weights_only=True)["init_from"]["checkpoint"].startswith(str(start.resolve()))


# ---------------------------------------------------------------- messages that say what is wrong (#25)

@pytest.mark.parametrize("value, message", [("nan", "not a finite number"), ("11", "far past any useful value"),
                                            ("-1", "a negative value would favour")])
def test_tau_messages_name_the_problem(trained, value, message):
    one_error_line(call("2_test.py", *RUN, f"--posthoc_tau={value}", cwd=trained), message)


def test_minus_zero_tau_is_zero(trained):
    assert call("2_test.py", *RUN, "--posthoc_tau=-0", cwd=trained).returncode == 0
    assert json.loads((run_dir_of(trained) / "test_metrics.json").read_text())["posthoc"]["tau"] == 0.0
    assert "tau -0" not in call("2_test.py", *RUN, "--posthoc_tau=-0", cwd=trained).stdout


@pytest.mark.parametrize("script", ["1_train.py", "2_test.py", "predict.py", "compare.py", "data_split.py"])
def test_help_works(script, monkeypatch, capsys):
    """``python <script> --help``, its ``__main__`` block run in this process (each script runs as a real process in
    other tests: starting one here would add only the seconds of importing torch)."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    printed = capsys.readouterr()
    assert exited.value.code == 0 and "usage:" in printed.out and "Traceback" not in printed.err


# ---------------------------------------------------------------- values written into generated scripts (Slurm)

def plan_sh(cwd, **variables):
    env = {**os.environ, "PYTHON": sys.executable, **variables}
    return subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("variables", [
    {"PLAN": "study", "DATASET": "x\ntouch P;#"},
    {"PLAN": "demo", "DATASET_NAME": "x\ntouch P;#"},
    {"PLAN": "demo", "SEEDS": "0 $(touch P)"},
    {"PLAN": "demo", "SEEDS": "0\ntouch P"},
    {"PLAN": "demo", "SLURM_MEM": "16G\ntouch P"},
    {"PLAN": "demo", "SLURM_ACCOUNT": "lab\n#SBATCH --wrap=touch P"},
    {"PLAN": "demo", "SLURM_EXTRA": "--qos=high;touch${IFS}P"},
    {"PLAN": "demo", "SLURM_TIME": "1:00:00 --wrap=touch"},
], ids=["study name", "dataset name", "seed substitution", "seed newline", "memory", "account", "extra", "time"])
def test_nothing_put_in_a_generated_script_runs(tmp_path, variables):
    """Every value written into a Slurm script is validated: one error line, no script written, nothing run."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    result = plan_sh(tmp_path, SCHEDULER="slurm", DRY_RUN="1", OBJECTIVES="ERM", **variables)
    one_error_line(result)
    assert not (tmp_path / "P").exists() and not (tmp_path / "logs" / "SimpleCNN").exists()


def test_a_dry_run_executes_nothing_it_wrote_and_the_scripts_submit_what_they_say(tmp_path):
    """A dataset with a space in its name: the dry run writes the scripts and prints their sbatch commands without
    running submit.sh; the scripts parse (bash -n), and submit.sh, run with a stand-in sbatch that records its
    arguments, submits exactly those, with outputs inside the scripts' folder."""
    make_dataset(tmp_path / "a_datasets", name="my data")
    (tmp_path / "bin").mkdir()
    calls = tmp_path / "calls"
    stand_in = tmp_path / "bin" / "sbatch"
    stand_in.write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> '{calls}'\necho >> '{calls}'\necho 4242\n")
    stand_in.chmod(0o755)
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    planned = plan_sh(tmp_path, PLAN="demo", DATASET_NAME="my data", SEEDS="0 1", OBJECTIVES="ERM CRT",
                      SCHEDULER="slurm", DRY_RUN="1", PATH=path)
    assert planned.returncode == 0, planned.stderr
    assert not calls.exists()  # nothing submitted, submit.sh not run
    assert "sbatch --dependency=aftercorr:1001 row-2.sbatch" in planned.stderr
    (folder,) = (tmp_path / "logs" / "SimpleCNN" / "my data" / "slurm").iterdir()
    for script in folder.iterdir():
        if script.suffix in (".sh", ".sbatch"):
            subprocess.run(["bash", "-n", str(script)], check=True)
    row = (folder / "row-1.sbatch").read_text()
    assert "#SBATCH --output=row-1-%A_%a.out" in row and "#SBATCH --job-name=cce-my_data-1-ERM" in row
    submitted = subprocess.run(["bash", str(folder / "submit.sh")], env={**os.environ, "PATH": path},
                               capture_output=True, text=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    assert calls.read_text().splitlines() == ["--parsable|row-1.sbatch|", "--parsable|--dependency=aftercorr:4242|row-2.sbatch|",
                                              "--parsable|--dependency=afterany:4242:4242|collect.sbatch|"]


def test_a_dataset_name_with_a_space_is_quoted_in_the_commands_shown():
    """The commands the report prints to reproduce a run quote the name.  (A whole plan under such a name, a second
    stage finding its first: test_run_sh.py::test_plan_end_to_end_with_seeds_and_per_objective_flags.)"""
    import train_args
    assert "--dataset='my data'" in train_args.command_line({"dataset": "my data", "lr": 0.1})


# ---------------------------------------------------------------- links planted inside the project's folders

def test_a_link_planted_in_logs_never_leads_a_write_outside(trained):
    """The roots may be links; a link inside logs/ that leads out of it is refused, naming it, by training,
    evaluation and resuming, and the folder it leads to is not touched."""
    outside = trained.parent / "elsewhere"
    run = run_dir_of(trained)
    shutil.copytree(run, outside / run.name)
    before = snapshot(outside)
    shutil.rmtree(run)
    os.symlink(outside / run.name, run)  # a run folder that is a link
    for command in (("2_test.py", *RUN), ("1_train.py", f"--resume={run.relative_to(trained)}", "--epochs=3")):
        one_error_line(call(*command, cwd=trained), "is a symbolic link to")
    objective = run.parent.parent / "CCE"  # an objective folder that is a link
    shutil.rmtree(objective)
    os.symlink(outside, objective)
    one_error_line(call("1_train.py", *TRAINED_FLAGS, "--objective=CCE", "--epochs=1", cwd=trained),
                   f"{objective.relative_to(trained)} is a symbolic link to")
    assert snapshot(outside) == before


def test_a_link_planted_as_a_dataset_cache_is_neither_read_nor_written(trained):
    outside = trained.parent / "elsewhere-cache"
    outside.mkdir()
    cache = trained / "a_datasets" / "tiny" / ".cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.symlink(outside, cache)
    result = call("1_train.py", *TRAINED_FLAGS, "--objective=ERM", "--epochs=1", "--disk_cache", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "is a symbolic link to" in result.stderr and "its cache is not used" in result.stderr
    assert not list(outside.iterdir())


# ---------------------------------------------------------------- the low items of #34

@pytest.mark.parametrize("flag", ["--markdown", "--plot", "--out"])
def test_an_output_inside_a_run_folder_is_refused(trained_evaluated, flag):
    trained = trained_evaluated
    run_dir = run_dir_of(trained)
    before = snapshot(run_dir)
    target = run_dir / ("test_metrics.json" if flag != "--plot" else "valid.csv")
    script = "report.py" if flag == "--out" else "compare.py"
    one_error_line(call(script, "--runs", run_dir, f"{flag}={target}", cwd=trained), "would be written into the run folder")
    assert snapshot(run_dir) == before


def test_a_study_of_a_dataset_study_py_refuses_is_one_line(tmp_path):
    make_dataset(tmp_path / "a_datasets", name="bad")
    shutil.rmtree(tmp_path / "a_datasets" / "bad" / "valid")
    result = plan_sh(tmp_path, PLAN="study", DATASET="bad", DRY_RUN="1")
    one_error_line(result)
    assert "unbound variable" not in result.stderr


def test_an_empty_test_class_is_reported_before_training(workdir):
    for image in (workdir / "a_datasets" / "tiny" / "test" / "dog").iterdir():
        image.unlink()
    result = call("1_train.py", *FAST, "--epochs=1", "--objective=ERM", cwd=workdir)
    one_error_line(result, "test/dog has no images")
    assert not list((workdir / "logs").rglob("config.json"))
