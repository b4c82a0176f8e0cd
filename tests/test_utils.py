"""Pure helpers: lr schedule, run folders, checkpoints, metrics, CSV logs."""
import datetime
import os
import pickle

import numpy as np
import pytest
import torch

import utils


def test_lr_stages_of_the_original_schedule():
    lrs = [0.1 * utils.lr_factor(epoch * 10, 10, [60, 60, 40, 40], 0.2) for epoch in range(230)]
    assert lrs[0] == lrs[59] == pytest.approx(0.1)
    assert lrs[60] == lrs[119] == pytest.approx(0.02)
    assert lrs[120] == lrs[159] == pytest.approx(0.004)
    assert lrs[160] == lrs[199] == lrs[229] == pytest.approx(0.0008)


def test_warmup_is_linear_per_iteration_over_five_epochs():
    iters = 4
    factors = [utils.lr_factor(t, iters, [60, 60, 40, 40], 0.2, warmup_epochs=5) for t in range(30)]
    assert factors[:20] == pytest.approx([(t + 1) / 20 for t in range(20)])
    assert factors[19] == factors[20] == 1.0


def test_warmup_counts_as_stage_zero():
    # a stage shorter than the warm-up: the decay applies on top of the ramp
    assert utils.lr_factor(2 * 10, 10, [2, 5], 0.5, warmup_epochs=5) == pytest.approx(0.5 * 21 / 50)


def test_parse_int_list_accepts_both_forms():
    assert utils.parse_int_list(["60", "60", "40", "40"]) == [60, 60, 40, 40]
    assert utils.parse_int_list(["60,60,40,40"]) == [60, 60, 40, 40]
    with pytest.raises(utils.UserError, match="whole numbers"):
        utils.parse_int_list(["6a"])


def test_same_second_runs_get_different_folders(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    first = utils.create_run_dir(tmp_path, "M", "d", "ERM", now)
    second = utils.create_run_dir(tmp_path, "M", "d", "ERM", now)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name == "2026-01-02-03-04-05" and second.name == "2026-01-02-03-04-06"
    assert utils.list_runs(tmp_path, "M", "d", "ERM") == [first.name, second.name]
    assert utils.find_run_dir(tmp_path, "M", "d", "ERM", "latest") == second


def test_find_run_dir_errors_list_runs(tmp_path):
    utils.create_run_dir(tmp_path, "M", "d", "ERM", datetime.datetime(2026, 1, 2, 3, 4, 5))
    with pytest.raises(utils.UserError, match="no run 2026-01-02-03-04-09.*available runs: 2026-01-02-03-04-05"):
        utils.find_run_dir(tmp_path, "M", "d", "ERM", "2026-01-02-03-04-09")
    with pytest.raises(utils.UserError, match="YYYY-MM-DD-HH-MM-SS"):
        utils.find_run_dir(tmp_path, "M", "d", "ERM", "yesterday")


def test_atomic_save_and_safe_load(tmp_path):
    path = tmp_path / "x.pth"
    utils.save_atomic({"a": torch.ones(2), "names": ["x"]}, path)
    assert utils.load_checkpoint(path)["names"] == ["x"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]  # no temp file left


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": _Exploit()}, path)
    with pytest.raises(utils.UserError, match="refusing to load"):
        utils.load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(utils.UserError, match="refusing to load"):
        utils.load_checkpoint(path)


def test_failed_save_leaves_previous_file(tmp_path):
    path = tmp_path / "x.pth"
    utils.save_atomic({"v": 1}, path)
    with pytest.raises(Exception):
        utils.save_atomic({"v": lambda: 0}, path)  # lambdas cannot be pickled
    assert utils.load_checkpoint(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]


def test_metrics_against_hand_computed_values():
    targets = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    m = utils.classification_metrics(targets, predictions, 3, class_counts=[150, 50, 5])
    assert m["acc"] == pytest.approx(100 * 6 / 8)
    assert m["balanced_acc"] == pytest.approx(100 * (3 / 4 + 1 / 2 + 1) / 3)
    f1 = [2 * 0.75 * 0.75 / 1.5, 0.5, 1.0]  # precision/recall: (3/4, 3/4), (1/2, 1/2), (1, 1)
    assert m["macro_f1"] == pytest.approx(100 * np.mean(f1))
    assert (m["many_acc"], m["medium_acc"], m["few_acc"]) == pytest.approx((75.0, 50.0, 100.0))


def test_shot_groups_thresholds():
    groups = utils.shot_groups([101, 100, 20, 19, 0], many_shot=100, few_shot=20)
    assert groups["many"].tolist() == [0]
    assert groups["medium"].tolist() == [1, 2]
    assert groups["few"].tolist() == [3, 4]


def test_csv_log_truncates_on_resume(tmp_path):
    path = tmp_path / "t.csv"
    log = utils.CsvLog(path, utils.CSV_COLUMNS)
    for epoch in range(4):
        log.write({"epoch": epoch, "loss": 1.0, "acc": 2.5, "top5acc": 3.0, "lr": 0.1})
    log.close()
    log = utils.CsvLog(path, utils.CSV_COLUMNS, keep_epochs_before=2)
    log.write({"epoch": 2, "loss": 1.0, "acc": 2.5, "top5acc": 3.0, "lr": 0.1})
    log.close()
    assert [row["epoch"] for row in utils.read_csv(path)] == ["0", "1", "2"]
