"""Two processes under torchrun (gloo on CPU): one log folder, every validation image counted once."""
import subprocess
import sys

import pytest
import torch

import runs
from conftest import FAST, ROOT, checkpoint_accuracy


def test_torchrun_two_processes(workdir):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "1_train.py"), *FAST, "--epochs=2", "--batchsize=4"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on cpu x2" in result.stdout
    found = list((workdir / "logs").rglob("valid.csv"))
    assert len(found) == 1, "only rank 0 may create a run folder"
    run_dir = found[0].parent
    rows = runs.read_csv(run_dir / "valid.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"] and len(runs.read_csv(run_dir / "train.csv")) == 2
    assert all(int(r["images"]) == 18 for r in rows)  # 18 validation images, none twice, none missed

    state = torch.load(runs.best_checkpoint_path(run_dir), weights_only=True)
    assert checkpoint_accuracy(workdir, state) == pytest.approx(state["acc"], abs=1e-3)
