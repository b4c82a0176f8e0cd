"""Two-stage training from a finished run: cRT, LWS and tau-normalisation (Kang et al., 2020), MaxNorm (weight
balancing, Alshammari et al., 2022); and runs that mix or use SAM resume exactly."""
import json

import numpy as np
import pytest
import torch

import runs
import stats
from conftest import FAST, call, run_dir_of, script
from utils import run_cli

STAGE_2 = [*FAST, "--epochs=1", "--lrstep", "1", "--sampler=class_balanced"]


def only_new_run(root, objective, known):
    (run_dir,) = set((root / "logs" / "SimpleCNN" / "tiny" / objective).iterdir()) - set(known)
    return run_dir


def weights(run_dir, name="last.pth"):
    return torch.load(run_dir / name, weights_only=True)


def is_backbone(name):
    return not name.startswith("fc.")


def test_crt_changes_the_head_only_and_keeps_batch_norm_statistics(trained):
    start = run_dir_of(trained, "ERM")
    result = call("1_train.py", *STAGE_2, f"--init_from={start}", "--freeze_backbone", "--reinit_head", cwd=trained)
    assert result.returncode == 0, result.stderr
    crt = only_new_run(trained, "ERM", [start])
    before = torch.load(runs.best_checkpoint_path(start), weights_only=True)
    after = weights(crt)
    for name, value in before["model"].items():
        if is_backbone(name):  # weights and running_mean/var/num_batches_tracked alike
            assert torch.equal(after["model"][name], value), name
    assert not torch.equal(after["model"]["fc.weight"], before["model"]["fc.weight"])
    config = json.loads((crt / "config.json").read_text())
    assert config["args"]["init_from"] == str(runs.best_checkpoint_path(start).resolve())
    assert after["init_from"]["checkpoint"] == config["args"]["init_from"]
    assert (after["mean"], after["std"]) == (before["mean"], before["std"])


def test_init_from_latest_and_its_errors(trained):
    start = run_dir_of(trained, "ERM")
    assert call("1_train.py", *STAGE_2, "--init_from=latest", "--freeze_backbone", cwd=trained).returncode == 0
    latest = only_new_run(trained, "ERM", [start])
    first_stage = str(runs.best_checkpoint_path(start).resolve())
    assert weights(latest)["init_from"]["checkpoint"] == first_stage
    # again: the newest ERM run is now a second stage, so latest still means the first stage
    assert call("1_train.py", *STAGE_2, "--init_from=latest", "--lws", cwd=trained).returncode == 0
    again = only_new_run(trained, "ERM", [start, latest])
    assert weights(again)["init_from"]["checkpoint"] == first_stage
    session_cb = run_dir_of(trained, "CB")
    other = call("1_train.py", *STAGE_2, "--objective=CB", "--init_from=latest:ERM", "--freeze_backbone", cwd=trained)
    assert other.returncode == 0, other.stderr
    cb = only_new_run(trained, "CB", [session_cb])
    assert weights(cb)["init_from"]["checkpoint"] == first_stage
    missing = call("1_train.py", *STAGE_2, "--init_from=nowhere", cwd=trained)
    assert missing.returncode == 2 and "--init_from: nowhere is not a run folder" in missing.stderr
    alone = call("1_train.py", *STAGE_2, "--lws", cwd=trained)
    assert alone.returncode == 2 and "--lws changes the classifier of a trained network: give --init_from" in alone.stderr
    wrong = call("1_train.py", *STAGE_2, "--model_index=42", f"--init_from={start}", cwd=trained)
    assert wrong.returncode == 2 and "the run's weights do not fit this network" in wrong.stderr


def test_lws_learns_only_the_class_scales(trained):
    start = run_dir_of(trained, "ERM")
    result = call("1_train.py", *STAGE_2, f"--init_from={start}", "--lws", cwd=trained)
    assert result.returncode == 0, result.stderr
    lws = only_new_run(trained, "ERM", [start])
    before = torch.load(runs.best_checkpoint_path(start), weights_only=True)["model"]
    after = weights(lws)
    renamed = {name.replace("fc.", "fc.classifier.", 1): name for name in before}
    assert after["lws"] is True and set(after["model"]) == set(renamed) | {"fc.scales"}
    for new_name, name in renamed.items():
        assert torch.equal(after["model"][new_name], before[name]), name
    assert not torch.equal(after["model"]["fc.scales"], torch.ones(3))
    evaluated = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", f"--datetime={lws.name}",
                     "--checkpoint=last", "--split=valid", cwd=trained)
    assert evaluated.returncode == 0, evaluated.stderr  # 2_test rebuilds the scaled head
    assert f"top-1 {after['acc']:.2f} %" in evaluated.stdout


def test_tau_normalisation_formula():
    logits = np.array([[2.0, 1.0, -1.0], [0.5, 3.0, 0.0]])
    norms = np.array([4.0, 1.0, 0.25])
    assert np.array_equal(stats.tau_normalise(logits, norms, 0.0), logits)  # T = 0: the network as trained
    assert np.allclose(stats.tau_normalise(logits, norms, 1.0), logits / norms)
    assert np.allclose(stats.tau_normalise(logits, norms, 0.5), logits / np.sqrt(norms))
    from b_models.heads import class_weight_norms
    head = torch.nn.Linear(4, 3)
    assert torch.allclose(class_weight_norms(head), head.weight.norm(dim=1))


def test_2_test_tau_norm_reports_beside_the_plain_result(trained, monkeypatch):
    seen = []
    original = stats.choose_tau_norm
    monkeypatch.setattr(stats, "choose_tau_norm", lambda logits, targets, norms: seen.append(len(targets))
                        or original(logits, targets, norms))
    args = ["--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest"]
    result = call("2_test.py", *args, "--tau_norm=auto", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert seen == [18]  # chosen on valid/'s 18 images
    metrics = json.loads((run_dir_of(trained) / "test_metrics.json").read_text())
    assert metrics["tau_norm"]["tau_chosen_on"] == "valid" and "tau-normalised classifier, tau" in result.stdout
    zero = call("2_test.py", *args, "--tau_norm=0", cwd=trained)
    metrics = json.loads((run_dir_of(trained) / "test_metrics.json").read_text())
    assert zero.returncode == 0 and metrics["tau_norm"]["acc"] == metrics["acc"]
    cosine = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM", "--datetime=latest",
                  "--tau_norm=1", cwd=trained)
    assert cosine.returncode == 2 and "unit norm by construction" in cosine.stderr


def test_maxnorm_keeps_every_class_vector_inside_the_ball(trained, monkeypatch):
    import b_models.heads as heads
    train = script("1_train")
    original, norms = heads.project_to_max_norm, []

    def checked(layer, max_norm):
        original(layer, max_norm)
        norms.append(float(layer.weight.norm(dim=1).max()))

    monkeypatch.setattr(train, "project_to_max_norm", checked)
    result = call("1_train.py", *FAST, "--epochs=2", "--maxnorm=0.3", "--weight_decay=5e-3", "--lr=0.5", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert len(norms) == 6 and max(norms) <= 0.3 + 1e-6  # 3 steps an epoch
    new = max((trained / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir())
    assert float(weights(new)["model"]["fc.weight"].norm(dim=1).max()) <= 0.3 + 1e-6
    cosine = call("1_train.py", *FAST, "--objective=LDAM", "--maxnorm=1", cwd=trained)
    assert cosine.returncode == 2 and "--maxnorm bounds the norms of a linear classifier" in cosine.stderr


def test_mixing_is_refused_for_objectives_that_do_not_mix(trained):
    result = call("1_train.py", *FAST, "--objective=COT", "--mix=mixup", cwd=trained)
    assert result.returncode == 2 and "--mix does not work with COT" in result.stderr


@pytest.mark.parametrize("extra", [["--mix=cutmix", "--sam_rho=0.1"], ["--mix=cmo", "--objective=LA"],
                                   ["--mix=remix", "--augment=randaugment", "--cutout=4"],
                                   ["--augment=rrc_flip", "--workers=1"]])
def test_mixed_sam_and_augmented_runs_resume_exactly(workdir, monkeypatch, extra):
    train = script("1_train")
    argv = [*FAST, "--epochs=3", *extra]
    monkeypatch.chdir(workdir)
    assert run_cli(train.main, train.get_args_parser(), argv) == 0
    objective = next((a.split("=")[1] for a in extra if a.startswith("--objective")), "ERM")
    (reference,) = (workdir / "logs" / "SimpleCNN" / "tiny" / objective).iterdir()
    reference_csv = (reference / "valid.csv").read_text()
    reference.rename(workdir / "reference")
    original, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):  # Ctrl-C during the second epoch
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    assert run_cli(train.main, train.get_args_parser(), argv) == 130
    monkeypatch.setattr(train, "train_one_epoch", original)
    (run_dir,) = (workdir / "logs" / "SimpleCNN" / "tiny" / objective).iterdir()
    assert run_cli(train.main, train.get_args_parser(), [f"--resume={run_dir}"]) == 0
    assert (run_dir / "valid.csv").read_text() == reference_csv
