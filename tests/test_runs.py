"""Run folders: names, finding and listing runs, CSV logs."""
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runs
from conftest import ROOT, run_dir_of
from utils import UserError


def test_same_second_runs_get_different_folders(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    first = runs.create_run_dir(tmp_path, "M", "d", "ERM", now)
    second = runs.create_run_dir(tmp_path, "M", "d", "ERM", now)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name == "2026-01-02-03-04-05" and second.name == "2026-01-02-03-04-06"
    assert runs.list_runs(tmp_path, "M", "d", "ERM") == [first.name, second.name]
    assert runs.find_run_dir(tmp_path, "M", "d", "ERM", "latest") == second


def test_find_run_dir_errors_list_runs(tmp_path):
    runs.create_run_dir(tmp_path, "M", "d", "ERM", datetime.datetime(2026, 1, 2, 3, 4, 5))
    with pytest.raises(UserError, match="no run 2026-01-02-03-04-09.*available runs: 2026-01-02-03-04-05"):
        runs.find_run_dir(tmp_path, "M", "d", "ERM", "2026-01-02-03-04-09")
    with pytest.raises(UserError, match="YYYY-MM-DD-HH-MM-SS"):
        runs.find_run_dir(tmp_path, "M", "d", "ERM", "yesterday")


def test_csv_log_truncates_on_resume(tmp_path):
    path = tmp_path / "t.csv"
    log = runs.CsvLog(path, runs.CSV_COLUMNS)
    for epoch in range(4):
        log.write({"epoch": epoch, "loss": 1.0, "acc": 2.5, "top5acc": 3.0, "lr": 0.1})
    log.close()
    log = runs.CsvLog(path, runs.CSV_COLUMNS, keep_epochs_before=2)
    log.write({"epoch": 2, "loss": 1.0, "acc": 2.5, "top5acc": 3.0, "lr": 0.1})
    log.close()
    assert [row["epoch"] for row in runs.read_csv(path)] == ["0", "1", "2"]


def test_a_trained_run_is_rebuilt_with_its_recorded_head_and_input(monkeypatch):
    import torch
    from runtime import Runtime
    built = {}

    def build(*args, **options):
        built.update(options, positional=args)
        return torch.nn.Linear(2, 3)

    monkeypatch.setattr(runs, "build_network", build)
    state = {"model_index": 25, "classes": ["a", "b", "c"], "normed_head": False, "head_scale": 1.0, "lws": True,
             "transform_input": True, "model": torch.nn.Linear(2, 3).state_dict()}
    runs.TrainedRun("run", "ckpt", state).network(Runtime())
    assert built["lws"] is True and built["transform_input"] is True and built["positional"][:2] == (25, 3)


def test_config_json_keeps_what_a_fresh_run_recorded_and_a_resumption_adds_the_architecture(tmp_path):
    """A fresh run writes its flags, environment, --pretrained file's SHA-256 and backbone architecture; a resumption
    keeps them, appends its environment, and adds the architecture to a run begun before that record existed."""
    about = {"args": {"lr": 0.1}, "environment": {"torch": "x"}, "pretrained_sha256": "ab" * 32,
             "model_config": {"embed_dim": 16}}
    recorder = runs.RunRecorder.__new__(runs.RunRecorder)
    recorder.run_dir, recorder.about = tmp_path, about
    recorder._write_config(resumed=False)
    fresh = json.loads((tmp_path / "config.json").read_text())
    assert fresh == {"args": {"lr": 0.1}, "environment": {"torch": "x"}, "pretrained_sha256": "ab" * 32,
                     "model_config": {"embed_dim": 16}}
    recorder.about = {**about, "environment": {"torch": "y"}}
    del recorder.about["pretrained_sha256"]  # a resumed run does not read its --pretrained file again
    recorder._write_config(resumed=True)
    resumed = json.loads((tmp_path / "config.json").read_text())
    assert resumed == {**fresh, "resumed_with": [{"torch": "y"}]}
    (tmp_path / "config.json").write_text(json.dumps({"args": {"lr": 0.1}, "environment": {"torch": "x"}}))
    recorder._write_config(resumed=True)  # begun before the architecture was recorded
    assert json.loads((tmp_path / "config.json").read_text())["model_config"] == {"embed_dim": 16}


def test_runs_py_find_answers_bad_input_in_one_line(tmp_path):
    for argv, message in ((["--model_index=999"], "unknown model index 999"),
                          (["--model_index=41", "--dataset=../x"], "leads outside")):
        argv = argv if any(a.startswith("--dataset") for a in argv) else [*argv, "--dataset=tiny"]
        done = subprocess.run([sys.executable, str(ROOT / "runs.py"), "find", *argv, "--tag=t", "--seed=0", "--",
                               "--dataset=tiny"], cwd=tmp_path, capture_output=True, text=True)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_runs_py_serve_answers_each_question_on_one_line_and_survives_bad_ones(trained, monkeypatch, capsys):
    """3_run.sh's one process for all of a plan's finds: each line a runs.py find command line (arguments apart by
    \\x1f), each answer one line, ``<exit status>\\x1f<what find printed>``; a bad question is its one error line
    and exit status 2, and the next question is still answered."""
    import io
    monkeypatch.chdir(trained)
    run = run_dir_of(trained)
    saved = json.loads((run / "config.json").read_text())
    saved["args"]["tag"] = "t"
    (run / "config.json").write_text(json.dumps(saved))
    seed = saved["args"]["seed"]
    ask = "\x1f".join
    questions = [ask(["find", "--model_index=41", "--dataset=tiny", "--tag=t", f"--seed={seed}"]),
                 ask(["find", "--model_index=41", "--dataset=tiny", "--tag=t", "--seed=zero"]),
                 ask(["list"]),
                 ask(["find", "--model_index=41", "--dataset=tiny", "--tag=other", f"--seed={seed}"]),
                 ask(["find", "--model_index=41", "--dataset=tiny", "--tag=t", f"--seed={seed}", "--",
                      "--dataset=tiny", "--model_index=41", "--objective=ERM", "--epochs=99"]),
                 ask(["find", "--model_index=41", "--dataset=tiny", "--tag=t", f"--seed={seed}", "--", "-h"])]
    answers = io.StringIO()
    runs.serve(io.StringIO("".join(f"{question}\n" for question in questions)), answers)
    lines = answers.getvalue().splitlines()
    assert len(lines) == 6
    status, printed = lines[0].split("\x1f")
    assert status == "0" and printed.split("\t")[0] in ("complete", "evaluated")
    assert Path(printed.split("\t")[1]).resolve() == run.resolve()
    assert lines[1] == "2\x1f" and lines[2] == "2\x1f"  # a bad seed, a command serve does not know
    errors = capsys.readouterr().err
    assert errors.count("error: ") == 2 and "--seed" in errors.splitlines()[0] and "'list'" in errors
    assert "usage:" in errors and "--objective" in errors  # the help a row's -h printed: on stderr, not the answer
    assert lines[3] == "1\x1f"  # no run of that tag
    status, printed = lines[4].split("\x1f")
    assert status == "0" and printed.startswith("stale\t")  # the row's flags are not what it trained with
    assert "epochs" in printed.split("\t")[2].split(",")
    assert lines[5] == "2\x1f"  # more than one line printed: not an answer (every answer is one line)


def test_runs_py_serve_reads_and_answers_bytes_as_the_command_line_does(tmp_path):
    """A folder name that is not UTF-8 reaches a command line as bytes; the same question sent to runs.py serve
    (as 3_run.sh sends it) is answered, not a crash, where Python would decode its input strictly."""
    logs = os.fsencode(tmp_path) + b"/caf\xe9"
    question = b"\x1f".join([b"find", b"--model_index=41", b"--dataset=tiny", b"--tag=t", b"--seed=0",
                             b"--logs_dir=" + logs]) + b"\n"
    done = subprocess.run([sys.executable, str(ROOT / "runs.py"), "serve"], input=question * 2, capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120)
    assert done.returncode == 0 and done.stdout == b"1\x1f\n" * 2, done.stderr  # twice: no run there, still serving
