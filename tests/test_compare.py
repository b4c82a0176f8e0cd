"""compare.py: the comparison table and the validation-curve figure."""
import json

from conftest import run


def fake_run(root, objective, name, accs, test_acc=None):
    run_dir = root / "logs" / "SimpleCNN" / "tiny" / objective / name
    run_dir.mkdir(parents=True)
    rows = ["epoch,loss,acc,top5acc,lr,balanced_acc,macro_f1"]
    rows += [f"{i},1.0,{acc},100,0.1,{acc - 1},{acc - 2}" for i, acc in enumerate(accs)]
    (run_dir / "valid.csv").write_text("\n".join(rows) + "\n")
    if test_acc is not None:
        (run_dir / "test_metrics.json").write_text(json.dumps({"acc": test_acc, "balanced_acc": 50.0, "macro_f1": 40.0}))
    return run_dir


def test_table_and_figure(tmp_path):
    erm = fake_run(tmp_path, "ERM", "2026-01-01-00-00-00", [10.0, 30.0, 20.0], test_acc=77.5)
    fake_run(tmp_path, "CCE", "2026-01-01-00-00-00", [5.0])
    cce = fake_run(tmp_path, "CCE", "2026-01-02-00-00-00", [15.0, 45.0])
    result = run("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                 "--plot=out/curves.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:6] == ["ERM", "test", "77.50", "50.00", "40.00", str(erm.relative_to(tmp_path))]
    # no test metrics yet: the best validation epoch of the latest CCE run
    assert lines[2].split()[:7] == ["CCE", "best", "valid", "45.00", "44.00", "43.00", str(cce.relative_to(tmp_path))]
    svg = (tmp_path / "out" / "curves.svg").read_text()
    assert "ERM (2026-01-01-00-00-00)" in svg and "CCE (2026-01-02-00-00-00)" in svg


def test_unknown_run_folder(tmp_path):
    result = run("compare.py", "--runs", str(tmp_path / "nothing"), cwd=tmp_path)
    assert result.returncode == 2 and "not a training run folder" in result.stderr
