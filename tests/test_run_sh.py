"""3_run.sh: the batch-experiment script and its demo plan."""
import os
import subprocess

from conftest import ROOT


def test_syntax():
    subprocess.run(["bash", "-n", str(ROOT / "3_run.sh")], check=True)


def test_quick_demo_end_to_end(tmp_path):
    objectives = ["ERM", "CCE", "COT", "FL", "CB", "LDAM", "BS", "LA"]
    env = {**os.environ, "EPOCHS": "1", "OBJECTIVES": " ".join(objectives)}
    result = subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout[result.stdout.index("objective "):].splitlines()
    assert [line.split()[0] for line in table[1:9]] == objectives
    assert all(line.split()[1] == "test" for line in table[1:9])
    for objective in objectives:
        (run_dir,) = (tmp_path / "logs" / "SimpleCNN" / "digits-lt" / objective).iterdir()
        assert (run_dir / "confusion_matrix.svg").is_file() and (run_dir / "test_metrics.json").is_file()
    curves = (tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "valid_acc.svg").read_text()
    assert all(f"{objective} (" in curves for objective in objectives)
