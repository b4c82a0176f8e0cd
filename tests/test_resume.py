"""Killed, interrupted and diverging runs: nothing half-written, and training resumes exactly."""
import json
import signal
import subprocess
import sys
import time

import torch

import runs
from conftest import FAST, ROOT, call

# ResNet-32 (0.2 s an epoch on one thread, 6 epochs): a signal sent when the first epoch ends lands a second before the
# run does, with checkpoints small enough to write quickly (ResNet18's took 1.4 s an epoch, mostly writing 45 MB twice)
EPOCHS = 6
SLOW = [a for a in FAST if not a.startswith("--model_index")] + ["--model_index=43", f"--epochs={EPOCHS}"]
# A run that a signal stops after its first epoch: epochs to spare, so a loaded machine's late signal still lands
# mid-run (a run that finished first would exit 0, and the test would say nothing about the signal)
STOPPED = [*SLOW, "--epochs=60"]


def start(workdir, *args):
    return subprocess.Popen([sys.executable, str(ROOT / "1_train.py"), *args], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_first_epoch(workdir, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        lasts = list((workdir / "logs").rglob("last.pth"))
        if lasts:
            return lasts[0].parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no epoch finished in time")


def test_sigkill_then_resume_matches_uninterrupted_run(workdir):
    reference = call("1_train.py", *SLOW, cwd=workdir)  # in this process; the killed run is a real process
    assert reference.returncode == 0, reference.stderr
    reference_dir = next((workdir / "logs").rglob("last.pth")).parent
    reference_csv = (reference_dir / "valid.csv").read_text()
    reference_dir.rename(workdir / "reference")

    process = start(workdir, *SLOW)
    run_dir = wait_for_first_epoch(workdir, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done = len(runs.read_csv(run_dir / "valid.csv"))
    assert 1 <= done < EPOCHS, "the kill should land mid-run"

    resumed = call("1_train.py", f"--resume={run_dir}", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    rows = runs.read_csv(run_dir / "valid.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))
    assert [int(r["epoch"]) for r in runs.read_csv(run_dir / "train.csv")] == list(range(EPOCHS))
    assert (run_dir / "valid.csv").read_text() == reference_csv  # same seed, same CPU: same numbers
    assert len(list(run_dir.glob("[0-9]*.pth"))) == 1
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))


def test_sigint_stops_cleanly_with_a_resume_hint(workdir):
    process = start(workdir, *STOPPED)
    run_dir = wait_for_first_epoch(workdir, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"python 1_train.py --resume {run_dir.relative_to(workdir)}" in err and "Traceback" not in err
    assert not list(run_dir.glob(".*.tmp"))
    state = torch.load(run_dir / "last.pth", weights_only=True)
    assert len(runs.read_csv(run_dir / "valid.csv")) == state["epoch"] + 1


def test_sigterm_is_handled_like_ctrl_c(workdir):
    process = start(workdir, *STOPPED)
    wait_for_first_epoch(workdir, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "--resume" in err


def test_resume_latest_extends_a_finished_run(workdir):
    assert call("1_train.py", *FAST, "--epochs=1", cwd=workdir).returncode == 0
    again = call("1_train.py", "--resume=latest", "--model_index=41", "--dataset=tiny", "--epochs=1", cwd=workdir)
    assert again.returncode == 2 and "already finished all 1 epochs" in again.stderr
    run_dir = next((workdir / "logs").rglob("last.pth")).parent
    # a run saved before --normed_head and --normed_scale existed resumes with a plain head
    state = torch.load(run_dir / "last.pth", weights_only=True)
    for key in ("normed_head", "normed_scale"):
        del state["args"][key]
    torch.save(state, run_dir / "last.pth")
    extended = call("1_train.py", "--resume=latest", "--model_index=41", "--dataset=tiny", "--epochs=2", cwd=workdir)
    assert extended.returncode == 0, extended.stderr
    assert [r["epoch"] for r in runs.read_csv(run_dir / "valid.csv")] == ["0", "1"]
    assert len(list((workdir / "logs").rglob("valid.csv"))) == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["epochs"] == 2 and config["args"]["normed_head"] is False
    assert len(config["resumed_with"]) == 1 and config["resumed_with"][0]["torch"] == str(torch.__version__)


def test_resume_before_first_epoch_is_explained(workdir):
    run_dir = workdir / "logs" / "SimpleCNN" / "tiny" / "ERM" / "2026-01-01-00-00-00"
    run_dir.mkdir(parents=True)
    result = call("1_train.py", f"--resume={run_dir}", cwd=workdir)
    assert result.returncode == 2 and "has no last.pth to resume from" in result.stderr


def test_non_finite_loss_stops_and_keeps_the_best_checkpoint(workdir):
    # Stage 2 multiplies the lr by 1e30: epoch 1 trains, epoch 2 diverges.
    result = call("1_train.py", *[a for a in FAST if a not in ("--lrstep", "1")], "--epochs=3", "--lrstep", "1", "2",
                  "--lrdecay=1e30", cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the loss became non-finite") and "epoch 2, batch" in lines[-1]
    assert "Traceback" not in result.stderr
    run_dir = next((workdir / "logs").rglob("last.pth")).parent
    assert len(runs.read_csv(run_dir / "valid.csv")) == 1
    best = runs.best_checkpoint_path(run_dir)
    state = torch.load(best, weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_a_kill_between_the_two_checkpoints_leaves_a_consistent_run(trained, monkeypatch):
    """The new best checkpoint is written, then last.pth, and only then the old best removed: a kill between the
    two saves keeps the best file last.pth names; the resumed run removes the unrecorded epoch's best."""
    import runs as runs_module
    from conftest import run_dir_of
    run_dir = run_dir_of(trained, "ERM")
    state = torch.load(run_dir / "last.pth", weights_only=True)
    recorded_best = state["best_file"]
    original = runs_module.save_atomic

    def killed_at_last(payload, path):
        if path.name == "last.pth":
            raise KeyboardInterrupt
        return original(payload, path)

    monkeypatch.setattr(runs_module, "save_atomic", killed_at_last)
    monkeypatch.setattr(runs_module.RunRecorder, "record", _always_best(runs_module.RunRecorder.record))
    assert call("1_train.py", f"--resume={run_dir}", "--epochs=3", cwd=trained).returncode == 130
    names = sorted(p.name for p in run_dir.glob("[0-9]*.pth"))
    assert recorded_best in names and len(names) == 2  # the old best kept, a stray new one beside it
    monkeypatch.undo()
    assert call("1_train.py", f"--resume={run_dir}", "--epochs=3", cwd=trained).returncode == 0
    final = torch.load(run_dir / "last.pth", weights_only=True)
    assert sorted(p.name for p in run_dir.glob("[0-9]*.pth")) == [final["best_file"]]


def _always_best(record):
    def wrapper(self, epoch, train_row, valid, model, training_state):
        self.best_acc = -1.0  # every epoch is a new best: the path that writes two files
        return record(self, epoch, train_row, {**valid, "acc": 99.99}, model, training_state)
    return wrapper
