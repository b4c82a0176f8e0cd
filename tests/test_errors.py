"""Every user mistake: one 'error:' line on stderr, exit status 2, no traceback, nothing new under logs/."""
import shutil

import pytest
import torch

import conftest
from conftest import FAST, files_under, run, script
from utils import run_cli


def call(name, argv, workdir, monkeypatch, capsys):
    """Run an entry script's main in-process (fast), as its command line does."""
    monkeypatch.chdir(workdir)
    module = script(name)
    before = files_under(workdir / "logs")
    status = run_cli(module.main, module.get_args_parser(), [str(a) for a in argv])
    captured = capsys.readouterr()
    assert files_under(workdir / "logs") == before, "an error must not create files under logs/"
    return status, captured.err


def assert_one_line_error(status, err, pattern):
    lines = err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    import re
    assert re.search(pattern, lines[0]), lines[0]


def base(**overrides):
    args = {"model_index": 41, "dataset": "tiny", "height": 16, "width": 16, "epochs": 1, "batchsize": 8}
    args.update(overrides)
    return [f"--{key}={value}" for key, value in args.items() if value is not None]


def _rmtree(path):
    shutil.rmtree(path)


TRAIN_CASES = {
    "unknown dataset": (base(dataset="nope"), None, r"'nope' not found in a_datasets/; available: tiny"),
    "missing train": (base(), lambda d: _rmtree(d / "train"), r"has no train/ folder"),
    "missing valid": (base(), lambda d: _rmtree(d / "valid"), r"has no valid/ folder"),
    "empty class": (base(), lambda d: [p.unlink() for p in (d / "valid" / "dog").iterdir()],
                    r"class folder .*dog has no images"),
    "class mismatch": (base(), lambda d: (d / "valid" / "fox").rename(d / "valid" / "owl"),
                       r"missing class folder\(s\) fox; extra class folder\(s\) owl"),
    "bad image": (base(), lambda d: (d / "train" / "cat" / "bad.png").write_bytes(b"\x89PNG broken"),
                  r"cannot decode image .*bad\.png.*--skip_bad_images"),
    "unknown model": (base(model_index=77), None, r"unknown model index 77.*get_model\.py"),
    "unknown objective": (base() + ["--objective=XYZ"], None, r"invalid choice: 'XYZ'.*ERM"),
    "text ccegamma": (base() + ["--ccegamma=high"], None, r"--ccegamma: invalid float value: 'high'"),
    "normed head without linear classifier": (base(model_index=40) + ["--normed_head"], None,
                                              r"SqueezeNet has no linear classifier layer to replace"),
    "zero normed scale": (base() + ["--normed_scale=0"], None, r"--normed_scale: must be positive"),
    "zero epochs": (base(epochs=0), None, r"--epochs: must be positive"),
    "negative batch": (base(batchsize=-4), None, r"--batchsize: must be positive"),
    "zero lr": (base() + ["--lr=0"], None, r"--lr: must be positive"),
    "bad lrstep": (base() + ["--lrstep", "60", "0", "40"], None, r"--lrstep lengths must be positive"),
    "text lrstep": (base() + ["--lrstep=60,x"], None, r"--lrstep takes whole numbers"),
    "image too small": (base(model_index=0), None, r"(?i)alexnet cannot take 16x16 images.*--height/--width"),
    "no dataset flag": (["--model_index=41"], None, r"--model_index and --dataset are required"),
    "resume nothing": (["--resume=logs/none"], None, r"is not a run folder"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_bad_input(case, workdir, monkeypatch, capsys):
    argv, damage, pattern = TRAIN_CASES[case]
    if damage:
        damage(workdir / "a_datasets" / "tiny")
    status, err = call("1_train", argv, workdir, monkeypatch, capsys)
    assert_one_line_error(status, err, pattern)


def test_skip_bad_images_warns_and_trains(workdir):
    (workdir / "a_datasets" / "tiny" / "train" / "cat" / "bad.jpg").write_bytes(b"nope")
    result = conftest.call("1_train.py", *FAST, "--epochs=1", "--skip_bad_images", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "warning: skipping: cannot decode image" in result.stderr and "bad.jpg" in result.stderr


def test_unwritable_logs(workdir, monkeypatch, capsys):
    (workdir / "blocked").write_text("a file where a folder should be")
    status, err = call("1_train", base() + ["--logs_dir=blocked/logs"], workdir, monkeypatch, capsys)
    assert_one_line_error(status, err, r"cannot create the run folder under blocked/logs.*writable --logs_dir")


@pytest.mark.parametrize("argv, pattern", [
    (base(model_index=77), r"unknown model index"),
    (base(dataset="nope"), r"available: tiny"),
])
def test_real_process_prints_no_traceback(workdir, argv, pattern):
    result = run("1_train.py", *argv, cwd=workdir)
    assert_one_line_error(result.returncode, result.stderr, pattern)
    assert files_under(workdir / "logs") == []


# ---------------------------------------------------------------- 2_test.py

@pytest.fixture
def trained_copy(trained):
    """A private copy of the session's finished runs."""
    return trained


def run_dir_of(root):
    return conftest.run_dir_of(root, "ERM")


def eval_args(dt="latest", **overrides):
    args = {"model_index": 41, "dataset": "tiny", "objective": "ERM", "datetime": dt}
    args.update(overrides)
    return [f"--{key}={value}" for key, value in args.items()]


def test_unknown_datetime_lists_runs(trained_copy, monkeypatch, capsys):
    name = run_dir_of(trained_copy).name
    status, err = call("2_test", eval_args("2001-01-01-00-00-00"), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, rf"no run 2001-01-01-00-00-00 .*available runs: {name}")
    status, err = call("2_test", eval_args("01-01-2001"), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"YYYY-MM-DD-HH-MM-SS")
    status, err = call("2_test", eval_args("latest", model_index=40), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"there are no runs under")


def test_run_without_checkpoint(trained_copy, monkeypatch, capsys):
    for path in run_dir_of(trained_copy).glob("*.pth"):
        path.unlink()
    status, err = call("2_test", eval_args(), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"has no <acc>\.pth checkpoint")


def test_classes_must_match_checkpoint(trained_copy, monkeypatch, capsys):
    for split in ("train", "valid", "test"):
        (trained_copy / "a_datasets" / "tiny" / split / "fox").rename(trained_copy / "a_datasets" / "tiny" / split / "owl")
    status, err = call("2_test", eval_args(), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"classes .* \(cat, dog, owl\) differ from the checkpoint's \(cat, dog, fox\)")


def test_model_index_must_match_checkpoint(trained_copy, monkeypatch, capsys):
    path = next(run_dir_of(trained_copy).glob("[0-9]*.pth"))
    state = torch.load(path, weights_only=True)
    state["model_index"] = 40
    torch.save(state, path)
    status, err = call("2_test", eval_args(), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"trained with model index 40, not 41")


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_malicious_checkpoint_is_refused(trained_copy, monkeypatch, capsys):
    path = next(run_dir_of(trained_copy).glob("[0-9]*.pth"))
    torch.save({"model": {}, "model_index": 41, "hook": _Payload()}, path)
    status, err = call("2_test", eval_args(), trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"refusing to load .*not a plain weights checkpoint")
    assert not (trained_copy / "pwned").exists()


def test_malicious_last_checkpoint_is_refused_on_resume(trained_copy, monkeypatch, capsys):
    run_dir = run_dir_of(trained_copy)
    torch.save({"args": {}, "hook": _Payload()}, run_dir / "last.pth")
    status, err = call("1_train", [f"--resume={run_dir}"], trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"refusing to load")
    assert not (trained_copy / "pwned").exists()


# ---------------------------------------------------------------- data_split.py

def test_split_ratios_must_sum_to_one(tmp_path, monkeypatch, capsys):
    (tmp_path / "logs").mkdir()
    (tmp_path / "c_original_dataset" / "raw" / "a").mkdir(parents=True)
    status, err = call("data_split", ["--dataset=raw", "--ratios", "0.5", "0.2", "0.2"], tmp_path, monkeypatch, capsys)
    assert_one_line_error(status, err, r"--ratios must be three non-negative numbers that sum to 1")


def test_split_source_without_classes(tmp_path, monkeypatch, capsys):
    (tmp_path / "logs").mkdir()
    (tmp_path / "c_original_dataset" / "raw").mkdir(parents=True)
    (tmp_path / "c_original_dataset" / "raw" / "1.png").write_bytes(b"x")
    status, err = call("data_split", ["--dataset=raw"], tmp_path, monkeypatch, capsys)
    assert_one_line_error(status, err, r"has no class folders")
    status, err = call("data_split", ["--dataset=other"], tmp_path, monkeypatch, capsys)
    assert_one_line_error(status, err, r"no raw dataset .*other; available: raw")
    assert not (tmp_path / "a_datasets").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["--imbalance_ratio=0.5"], r"--imbalance_ratio must be >= 1, got 0.5"),
    (["--valid_per_class=0"], r"--valid_per_class must be a positive number of images, got 0"),
    (["--n_max=-3"], r"--n_max must be a positive number of images, got -3"),
])
def test_torchvision_export_bad_numbers(tmp_path, monkeypatch, capsys, argv, pattern):
    (tmp_path / "logs").mkdir()
    status, err = call("data_split", ["--from_torchvision=CIFAR10", "--no_download", *argv], tmp_path, monkeypatch,
                       capsys)
    assert_one_line_error(status, err, pattern)
    assert not (tmp_path / "a_datasets").exists() and not (tmp_path / "data").exists()


def test_resume_with_changed_classes(trained_copy, monkeypatch, capsys):
    for split in ("train", "valid", "test"):
        root = trained_copy / "a_datasets" / "tiny" / split
        (root / "fox").rename(root / "owl")
    run_dir = run_dir_of(trained_copy)
    status, err = call("1_train", [f"--resume={run_dir}", "--epochs=3"], trained_copy, monkeypatch, capsys)
    assert_one_line_error(status, err, r"\(cat, dog, owl\) differ from those of the run to resume \(cat, dog, fox\)")
