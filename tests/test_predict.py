"""predict.py: predictions for new images, equal to what 2_test.py counts."""
import csv
import json
import shutil

import pytest

from conftest import call, run

ARGS = ["--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest"]


@pytest.fixture
def workdir(trained):
    return trained


def read_rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_predictions_match_2_test(workdir):
    test_dir = workdir / "a_datasets" / "tiny" / "test"
    result = run("predict.py", *ARGS, "--images", str(test_dir), "--out=out/predictions.csv", cwd=workdir)  # a real process
    assert result.returncode == 0, result.stderr
    rows = read_rows(workdir / "out" / "predictions.csv")
    assert len(rows) == 15 and "classified 15 image(s)" in result.stdout and "out/predictions.csv" in result.stdout
    assert list(rows[0]) == ["path", "prediction", "probability", "top2", "top2_probability", "top3",
                             "top3_probability"]
    for row in rows:
        probabilities = [float(row[key]) for key in ("probability", "top2_probability", "top3_probability")]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-5
        assert {row["prediction"], row["top2"], row["top3"]} == {"cat", "dog", "fox"}
    evaluated = call("2_test.py", *ARGS, cwd=workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    run_dir = next((workdir / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir())
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    from pathlib import Path
    hits = [row["prediction"] == Path(row["path"]).parent.name for row in rows]
    assert 100 * sum(hits) / len(hits) == pytest.approx(metrics["acc"])
    for entry in metrics["per_class"]:
        mine = [hit for hit, row in zip(hits, rows) if Path(row["path"]).parent.name == entry["class"]]
        assert 100 * sum(mine) / len(mine) == pytest.approx(entry["recall"])


def test_files_topk_and_a_bad_image(workdir):
    folder = workdir / "new"
    shutil.copytree(workdir / "a_datasets" / "tiny" / "valid" / "cat", folder)  # with .DS_Store and notes.txt
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    single = workdir / "a_datasets" / "tiny" / "test" / "dog" / "0.png"
    result = call("predict.py", *ARGS, "--images", str(folder), str(single), "--topk=2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "broken.png" in warnings[0]
    rows = read_rows(workdir / "predictions.csv")
    assert len(rows) == 7 and rows[-1]["path"] == str(single)
    assert list(rows[0]) == ["path", "prediction", "probability", "top2", "top2_probability"]
    assert all(float(r["probability"]) + float(r["top2_probability"]) < 1 for r in rows)
    assert "1 could not be decoded" in result.stdout


@pytest.mark.parametrize("extra, message", [
    (["--images", "a_datasets/tiny/test", "--datetime=2001-01-01-00-00-00"], "no run 2001-01-01-00-00-00"),
    (["--images", "empty"], "no images found in empty"),
    (["--images", "missing.png"], "--images: missing.png does not exist"),
    (["--images", "a_datasets/tiny/test", "--out=blocked/predictions.csv"], "cannot write --out blocked/predictions.csv"),
])
def test_errors(workdir, extra, message):
    (workdir / "empty").mkdir()
    (workdir / "empty" / "notes.txt").write_text("no image here")
    (workdir / "blocked").write_text("a file where a folder should be")
    result = call("predict.py", *ARGS[:3], *(["--datetime=latest"] if "--datetime" not in extra[-1] else []), *extra,
                  cwd=workdir)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (workdir / "predictions.csv").exists()
