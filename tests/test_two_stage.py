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


@pytest.mark.parametrize("bn_stats", [None, "update", "frozen"])
def test_crt_changes_the_head_only_and_batch_norm_statistics_as_asked(trained, bn_stats):
    """Kang et al.'s cRT runs the frozen backbone in training mode: batch norm re-estimates its running statistics
    on the class-balanced batches (the default, ``update``) and no backbone weight moves; ``frozen`` keeps both."""
    start = run_dir_of(trained, "ERM")
    extra = [f"--bn_stats={bn_stats}"] if bn_stats else []
    result = call("1_train.py", *STAGE_2, f"--init_from={start}", "--freeze_backbone", "--reinit_head", *extra,
                  cwd=trained)
    assert result.returncode == 0, result.stderr
    crt = only_new_run(trained, "ERM", [start])
    before = torch.load(runs.best_checkpoint_path(start), weights_only=True)
    after = weights(crt)
    statistics = [name for name in before["model"] if name.endswith(("running_mean", "running_var"))]
    assert statistics and all(is_backbone(name) for name in statistics)
    for name, value in before["model"].items():
        if is_backbone(name) and name not in statistics and not name.endswith("num_batches_tracked"):
            assert torch.equal(after["model"][name], value), name  # weights and batch-norm affine parameters
    moved = [name for name in statistics if not torch.equal(after["model"][name], before["model"][name])]
    assert moved == ([] if bn_stats == "frozen" else statistics)
    assert not torch.equal(after["model"]["fc.weight"], before["model"]["fc.weight"])
    config = json.loads((crt / "config.json").read_text())
    assert config["args"]["init_from"] == str(runs.best_checkpoint_path(start).resolve())
    assert config["args"]["bn_stats"] == (bn_stats or "update")
    assert after["init_from"]["checkpoint"] == config["args"]["init_from"]
    assert (after["mean"], after["std"]) == (before["mean"], before["std"])


def test_bn_stats_needs_a_frozen_backbone(trained):
    result = call("1_train.py", *STAGE_2, "--bn_stats=frozen", cwd=trained)
    assert result.returncode == 2 and "--bn_stats has no effect without --freeze_backbone or --lws" in result.stderr


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
    for new_name, name in renamed.items():  # batch-norm statistics re-estimated (--bn_stats update), weights kept
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(after["model"][new_name], before[name]), name
    assert not torch.equal(after["model"]["fc.scales"], torch.ones(3))
    evaluated = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", f"--datetime={lws.name}",
                     "--checkpoint=last", "--split=valid", cwd=trained)
    assert evaluated.returncode == 0, evaluated.stderr  # 2_test rebuilds the scaled head
    assert f"top-1 {after['acc']:.2f} %" in evaluated.stdout


def test_tau_normalisation_formula():
    """Kang et al.'s tau_norm.py: x . (w_j / ||w_j||^tau), the bias dropped: from the logits z = W x + b."""
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 3)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    features = torch.randn(5, 4)
    logits = head(features).detach().numpy()
    from b_models.heads import class_weight_norms
    norms = class_weight_norms(head).numpy()
    assert np.allclose(norms, head.weight.detach().norm(dim=1).numpy())
    bias = head.bias.detach().numpy()
    for tau in (0.0, 0.5, 1.0, 1.7):
        expected = features @ (head.weight / head.weight.norm(dim=1, keepdim=True) ** tau).T
        assert np.allclose(stats.tau_normalise(logits, norms, tau, bias), expected.detach().numpy(), atol=1e-6)
    assert np.allclose(stats.tau_normalise(logits, norms, 1.0), logits / norms)  # a head without bias


def test_2_test_tau_norm_reports_beside_the_plain_result(trained, monkeypatch):
    seen = []
    original = stats.choose_tau_norm
    monkeypatch.setattr(stats, "choose_tau_norm", lambda logits, targets, norms, **options: seen.append(len(targets))
                        or original(logits, targets, norms, **options))
    args = ["--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest"]
    result = call("2_test.py", *args, "--tau_norm=auto", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert seen == [18]  # chosen on valid/'s 18 images
    metrics = json.loads((run_dir_of(trained) / "test_metrics.json").read_text())
    assert metrics["tau_norm"]["tau_chosen_on"] == "valid" and "tau-normalised classifier, tau" in result.stdout
    zero = call("2_test.py", *args, "--tau_norm=0", cwd=trained)
    assert zero.returncode == 0, zero.stderr
    metrics = json.loads((run_dir_of(trained) / "test_metrics.json").read_text())
    with np.load(run_dir_of(trained) / "test_predictions.npz") as saved:  # tau 0: the network without its bias
        bias = torch.load(runs.best_checkpoint_path(run_dir_of(trained)), weights_only=True)["model"]["fc.bias"]
        unbiased = (np.log(saved["probs"]) - bias.numpy()).argmax(axis=1)
        assert metrics["tau_norm"]["acc"] == pytest.approx(100 * np.mean(unbiased == saved["targets"]))
    cosine = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM", "--datetime=latest",
                  "--tau_norm=1", cwd=trained)
    assert cosine.returncode == 2 and "unit norm by construction" in cosine.stderr


def test_relative_maxnorm_threshold_is_the_hand_computed_one():
    """Alshammari et al.'s setPerLayerThresh: min_k ||w_k|| + thresh * (max_k ||w_k|| - min_k ||w_k||)."""
    from b_models.heads import max_norm_radius, project_to_max_norm
    head = torch.nn.Linear(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 4.0], [0.6, 0.8], [1.0, 0.0]]))  # norms 5, 1, 1
    assert max_norm_radius(head, 0.1) == pytest.approx(1 + 0.1 * (5 - 1))
    assert max_norm_radius(head, 0.1, relative=False) == pytest.approx(0.1)
    bias = head.bias.detach().clone()
    project_to_max_norm(head, 1.4)
    assert head.weight.norm(dim=1).tolist() == pytest.approx([1.4, 1.0, 1.0], abs=1e-5)
    assert torch.equal(head.bias, bias)  # never projected


@pytest.mark.parametrize("every, calls", [("epoch", 2), ("step", 6)])
def test_maxnorm_projects_where_asked_onto_the_relative_radius(trained, monkeypatch, every, calls):
    import b_models.heads as heads
    train = script("1_train")
    original, radii, norms = heads.project_to_max_norm, [], []

    def checked(layer, max_norm):
        original(layer, max_norm)
        radii.append(max_norm)
        norms.append(float(layer.weight.norm(dim=1).max()))

    monkeypatch.setattr(train, "project_to_max_norm", checked)
    start = run_dir_of(trained, "ERM")
    first = torch.load(runs.best_checkpoint_path(start), weights_only=True)["model"]["fc.weight"].norm(dim=1)
    result = call("1_train.py", *FAST, "--epochs=2", f"--init_from={start}", "--freeze_backbone", "--maxnorm=0.1",
                  f"--maxnorm_every={every}", "--lr=0.5", cwd=trained)
    assert result.returncode == 0, result.stderr
    expected = float(first.min() + 0.1 * (first.max() - first.min()))
    assert len(radii) == calls and radii == pytest.approx([expected] * calls)  # 3 steps an epoch
    assert max(norms) <= expected + 1e-5
    new = only_new_run(trained, "ERM", [start])
    assert weights(new)["maxnorm_radius"] == pytest.approx(expected)
    assert float(weights(new)["model"]["fc.weight"].norm(dim=1).max()) <= expected + 1e-5
    config = json.loads((new / "config.json").read_text())["args"]
    assert (config["maxnorm_threshold"], config["maxnorm_every"]) == ("relative", every)
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
