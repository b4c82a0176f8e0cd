"""Two processes under torchrun (gloo on CPU): one log folder, every validation image counted once."""
import subprocess
import sys

import pytest
import torch

import utils
from conftest import FAST, ROOT, checkpoint_accuracy


def test_torchrun_two_processes(workdir):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "1_train.py"), *FAST, "--epochs=2", "--batchsize=4"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on cpu x2" in result.stdout
    runs = list((workdir / "logs").rglob("valid.csv"))
    assert len(runs) == 1, "only rank 0 may create a run folder"
    run_dir = runs[0].parent
    rows = utils.read_csv(run_dir / "valid.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"] and len(utils.read_csv(run_dir / "train.csv")) == 2
    assert all(int(r["images"]) == 18 for r in rows)  # 18 validation images, none twice, none missed

    state = torch.load(utils.best_checkpoint_path(run_dir), weights_only=True)
    assert checkpoint_accuracy(workdir, state) == pytest.approx(state["acc"], abs=1e-3)
