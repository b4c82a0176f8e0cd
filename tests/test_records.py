"""records.py: a run's record (results/, committed) holds what compare.py and report.py read, within its size
budget, and is checked as a run folder is."""
import json
import shutil

import numpy as np
import pytest

import records
from conftest import FAST, call, run_dir_of


@pytest.fixture(scope="module")
def evaluated_once(trained_once, tmp_path_factory):
    """The session's trained runs with ERM and LA evaluated on test (and their test-time adjustments), once for
    this file's tests; never changed (``evaluated`` gives each test a copy)."""
    root = tmp_path_factory.mktemp("evaluated") / "w"
    shutil.copytree(trained_once[0], root)
    for objective in ("ERM", "LA"):
        result = call("2_test.py", "--model_index=41", "--dataset=tiny", f"--objective={objective}",
                      "--datetime=latest", "--posthoc_tau=auto", "--tau_norm=auto", cwd=root)
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def evaluated(evaluated_once, tmp_path):
    """A private copy of ``evaluated_once``."""
    shutil.copytree(evaluated_once, tmp_path / "w", symlinks=True)
    return tmp_path / "w"


def export(root, *runs):
    return call("records.py", "export", *runs, cwd=root)


def table(root, logs_dir):
    """compare.py's table rows, without the run-folder column (it names where the runs lie)."""
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "LA",
                  f"--logs_dir={logs_dir}", "--test_prior=forward-2", cwd=root)
    assert result.returncode == 0, result.stderr
    return [line.rsplit("  ", 1)[0] for line in result.stdout.splitlines()[1:3]]


def test_a_record_gives_the_runs_numbers(evaluated):
    runs = [run_dir_of(evaluated, objective) for objective in ("ERM", "LA")]
    result = export(evaluated, *(run.relative_to(evaluated) for run in runs))
    assert result.returncode == 0, result.stderr
    for run in runs:
        record = evaluated / "results" / run.relative_to(evaluated / "logs")
        names = sorted(path.name for path in record.iterdir())
        assert names == ["config.json", "record.json", "test_metrics.json", "test_predictions.npz", "train.csv",
                         "valid.csv"]
        assert sum(path.stat().st_size for path in record.iterdir()) <= records.MAX_RECORD_BYTES
        for name in ("config.json", "train.csv", "valid.csv", "test_metrics.json"):
            assert (record / name).read_bytes() == (run / name).read_bytes()
        with np.load(run / "test_predictions.npz") as full, np.load(record / "test_predictions.npz") as compact:
            assert np.array_equal(compact["predicted"], full["probs"].argmax(axis=1))
            assert np.allclose(compact["confidence"], full["probs"].max(axis=1), atol=1e-3)
            assert np.array_equal(compact["posthoc_predicted"], full["posthoc_predicted"])
            assert np.array_equal(compact["paths"], full["paths"]) and "probs" not in compact
        saved = json.loads((record / "record.json").read_text())
        assert saved["classes"] == ["cat", "dog", "fox"] and saved["class_counts"] == [12, 8, 4]
    again = export(evaluated, *(run.relative_to(evaluated) for run in runs))
    assert again.returncode == 0 and again.stdout.count("current already") == 2
    # Evaluated again under the test priors: the same predictions, new metrics, so the record is written again
    assert call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LA", "--datetime=latest",
                "--posthoc_tau=auto", "--tau_norm=auto", "--test_prior=all", cwd=evaluated).returncode == 0
    third = export(evaluated, *(run.relative_to(evaluated) for run in runs))
    assert third.stdout.count("current already") == 1 and third.stdout.count("wrote ") == 1
    record = evaluated / "results" / runs[1].relative_to(evaluated / "logs")
    assert (record / "test_metrics.json").read_bytes() == (runs[1] / "test_metrics.json").read_bytes()
    assert "test_priors" in json.loads((record / "test_metrics.json").read_text())
    # compare.py reads the records as it read the run folders, which a fresh clone does not have: the same table,
    # test prior included (its class counts come from record.json), to the last digit
    from_runs = table(evaluated, "logs")
    shutil.rmtree(evaluated / "logs")
    assert table(evaluated, "results") == from_runs


def test_the_report_reads_records(evaluated):
    assert export(evaluated, "--all").returncode == 0
    result = call("report.py", "--logs_dir=results", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "LA",
                  "--out=report.html", cwd=evaluated)
    assert result.returncode == 0, result.stderr
    page = (evaluated / "report.html").read_text()
    assert "ECE" in page and "cat" in page  # the reliability diagram, from the compact top-1 probabilities


@pytest.mark.parametrize("edit", ["metrics", "predictions", "config", "csv", "unlisted", "added", "missing"])
def test_a_tampered_record_is_named(evaluated, edit):
    run = run_dir_of(evaluated, "ERM")
    assert export(evaluated, run).returncode == 0
    record = evaluated / "results" / run.relative_to(evaluated / "logs")
    if edit == "metrics":  # a better number, the hash left as it was: the predictions say otherwise
        metrics = json.loads((record / "test_metrics.json").read_text())
        metrics["balanced_acc"] += 5
        (record / "test_metrics.json").write_text(json.dumps(metrics))
    elif edit == "predictions":
        with np.load(record / "test_predictions.npz") as saved:
            arrays = dict(saved)
        arrays["predicted"] = arrays["targets"]
        np.savez_compressed(record / "test_predictions.npz", **arrays)
    elif edit == "config":
        config = json.loads((record / "config.json").read_text())
        config["args"]["seed"] = 7
        (record / "config.json").write_text(json.dumps(config))
    elif edit == "csv":
        (record / "valid.csv").write_text((record / "valid.csv").read_text().replace(",", ";", 3))
    elif edit == "unlisted":  # the config edited and taken out of the listing that would have caught it
        config = json.loads((record / "config.json").read_text())
        config["args"]["seed"] = 7
        (record / "config.json").write_text(json.dumps(config))
        listing = json.loads((record / "record.json").read_text())
        del listing["files"]["config.json"]
        (record / "record.json").write_text(json.dumps(listing))
    elif edit == "added":
        (record / "test_last_metrics.json").write_text((record / "test_metrics.json").read_text())
    else:
        (record / "test_predictions.npz").unlink()
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives=ERM", "--logs_dir=results",
                  cwd=evaluated)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert str(record) in result.stderr or record.name in result.stderr


def test_a_record_over_the_budget_is_refused_and_the_old_one_kept(evaluated, monkeypatch):
    run = run_dir_of(evaluated, "ERM")
    assert export(evaluated, run).returncode == 0
    record = evaluated / "results" / run.relative_to(evaluated / "logs")
    before = {path.name: path.read_bytes() for path in record.iterdir()}
    (run / "config.json").write_text((run / "config.json").read_text().replace('"args"', '"args"', 1) + "\n")
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 5_000)
    result = export(evaluated, run)
    assert result.returncode == 2 and "over the 5 KB a record may" in result.stderr
    assert {path.name: path.read_bytes() for path in record.iterdir()} == before
    assert sorted(path.name for path in record.parent.iterdir()) == [record.name]  # nothing half-written beside it


def test_what_cannot_be_recorded_is_refused(evaluated, tmp_path):
    run = run_dir_of(evaluated, "ERM")
    before = sorted(path.name for path in run.iterdir())
    result = call("records.py", "export", str(run), "--to=logs", cwd=evaluated)  # the records' root is the runs'
    assert result.returncode == 2 and "would replace the run folder itself" in result.stderr
    assert sorted(path.name for path in run.iterdir()) == before
    unevaluated = run_dir_of(evaluated, "CCE")
    result = export(evaluated, unevaluated)
    assert result.returncode == 2 and "run 2_test.py on it first" in result.stderr
    assert export(evaluated, tmp_path).returncode == 2
    assert export(evaluated).returncode == 2  # neither runs nor --all
    run = run_dir_of(evaluated, "ERM")
    for checkpoint in run.glob("*.pth"):
        checkpoint.unlink()
    assert "no best checkpoint" in export(evaluated, run).stderr


def test_a_second_stage_brings_its_first_stage(evaluated):
    start = run_dir_of(evaluated, "ERM")
    result = call("1_train.py", *FAST, "--epochs=1", "--objective=ERM", f"--init_from={start}",
                  "--freeze_backbone", "--reinit_head", "--sampler=class_aware", cwd=evaluated)
    assert result.returncode == 0, result.stderr
    (second,) = [run for run in start.parent.iterdir() if run != start]
    assert call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", f"--datetime={second.name}",
                cwd=evaluated).returncode == 0
    assert export(evaluated, second).returncode == 0
    assert (evaluated / "results" / start.relative_to(evaluated / "logs") / "record.json").is_file()
    shutil.rmtree(evaluated / "logs")  # the group's label comes from the first stage's record
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives=ERM", "--datetime=all",
                  "--logs_dir=results", cwd=evaluated)
    assert result.returncode == 0, result.stderr
    assert [line.split("  ")[0] for line in result.stdout.splitlines()[1:3]] == ["ERM", "ERM cRT"]


def test_a_plan_keeps_only_a_record_it_can_trust(evaluated, capsys, monkeypatch):
    """runs.py find --records (how a plan on a fresh clone keeps a row's record as its run): a record kept; the same
    record behind a link out of the records' root, or with a damaged record.json, is named once on stderr and not
    kept (exit 1: the row trains), never a traceback."""
    import runs

    run = run_dir_of(evaluated, "ERM")
    config = json.loads((run / "config.json").read_text())
    config["args"]["tag"] = "row"  # as a plan's run carries its row's tag
    (run / "config.json").write_text(json.dumps(config))
    assert export(evaluated, run).returncode == 0
    monkeypatch.chdir(evaluated)
    shutil.rmtree("logs")
    question = runs.find_parser().parse_args(["find", "--model_index=41", "--dataset=tiny", "--tag=row",
                                              f"--seed={config['args']['seed']}", "--records=results"])
    record = f"results/SimpleCNN/tiny/ERM/{run.name}"
    capsys.readouterr()
    assert runs.find_main(question) == 0 and capsys.readouterr().out == f"recorded\t{record}\n"

    shutil.move(record, "elsewhere")  # planted: a link inside the root to a folder outside it
    (evaluated / record).symlink_to(evaluated / "elsewhere", target_is_directory=True)
    assert runs.find_main(question) == 1
    assert "is a symbolic link" in capsys.readouterr().err
    (evaluated / record).unlink()
    shutil.move("elsewhere", record)

    listing = json.loads((evaluated / record / "record.json").read_text())
    listing["predictions"]["test_predictions.npz"] = "not an entry"
    (evaluated / record / "record.json").write_text(json.dumps(listing))
    for _ in range(2):
        assert runs.find_main(question) == 1
    err = capsys.readouterr().err
    assert err.count("note: not kept") == 1 and "is damaged" in err  # once, however often the plan asks
