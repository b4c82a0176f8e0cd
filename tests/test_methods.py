"""The 2021-2023 records as flags: MiSLAS (label-aware smoothing, LWS with the classifier, shifted batch norm), BCL
(balanced contrastive loss, prototypes, views) and GLMC (mixed views, re-balanced head, consistency); their heads are
trained beside the network and never evaluated."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import augment
import criterion
import loader
import methods
import runs
from conftest import FAST, call, run_dir_of, script
from utils import run_cli


def test_label_aware_smoothing_values_and_loss_by_hand():
    """MiSLAS's concave rule: eps_k = tail + (head - tail) sin(pi/2 (n_k - n_min)/(n_max - n_min))."""
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    eps = criterion.label_aware_epsilons(counts, 0.3, 0.0)
    by_hand = [0.3 * math.sin(math.pi / 2 * (n - 50) / (5000 - 50)) for n in counts]
    assert eps.tolist() == pytest.approx(by_hand, abs=1e-6)
    assert eps.tolist()[:4] == pytest.approx([0.300, 0.2414, 0.1578, 0.0960], abs=1e-3)  # their printed values
    assert criterion.label_aware_epsilons([100, 10, 1], 0.4, 0.1).tolist() == pytest.approx(
        [0.4, 0.1 + 0.3 * math.sin(math.pi / 2 * 9 / 99), 0.1])
    logits, targets = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 0.1]]), torch.tensor([0, 2])
    loss = criterion.get_criterion("LAS", 3, class_counts=[100, 10, 1], las_head=0.4, las_tail=0.1)(logits, targets)
    log_p = torch.log_softmax(logits, 1)
    e = criterion.label_aware_epsilons([100, 10, 1], 0.4, 0.1)
    expected = ((1 - e[0]) * -log_p[0, 0] + e[0] * -log_p[0].mean() + (1 - e[2]) * -log_p[1, 2] + e[2] * -log_p[1].mean()) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def balanced_contrastive_by_hand(prototypes, features, labels, temperature):
    """BCL's loss written out anchor by anchor, class by class."""
    batch, views, _ = features.shape
    anchors = [(features[i, v], int(labels[i]), v * batch + i) for v in range(views) for i in range(batch)]
    contrast = [(features[i, v], int(labels[i]), v * batch + i) for v in range(views) for i in range(batch)]
    contrast += [(prototypes[c], c, batch * views + c) for c in range(len(prototypes))]
    total = 0.0
    for z, y, index in anchors:
        members = {c: [(w, j) for w, cls, j in contrast if cls == c and j != index] for c in range(len(prototypes))}
        denominator = sum(sum(math.exp(float(z @ w) / temperature) for w, _ in group) / len(group)
                          for group in members.values() if group)
        positives = members[y]
        total += -sum(float(z @ w) / temperature - math.log(denominator) for w, _ in positives) / len(positives)
    return total / len(anchors)


def test_balanced_contrastive_loss_by_hand_and_gradcheck():
    torch.manual_seed(0)
    features = F.normalize(torch.randn(5, 2, 4, dtype=torch.float64), dim=2)
    prototypes = F.normalize(torch.randn(3, 4, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 1, 1, 0, 0])  # class 2 has no image in the batch: its prototype is its only member
    value = criterion.balanced_contrastive_loss(prototypes, features, labels, 0.1)
    assert value.item() == pytest.approx(balanced_contrastive_by_hand(prototypes, features, labels, 0.1), rel=1e-9)
    features.requires_grad_(True)
    prototypes.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, p: criterion.balanced_contrastive_loss(p, f, labels, 0.1),
                                    (features, prototypes))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.body = torch.nn.Linear(12, 5)
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.body(x.flatten(1))))


def test_glmc_loss_is_the_hand_computed_sum(monkeypatch):
    """a_e [CE_plain(mix) + CE_plain(cut)] + (1 - a_e) [CE_rebalanced on w-weighted targets] + c (-cos(p_mix,
    sg z_cut) - cos(p_cut, sg z_mix)), a_e = 1 - (e/E)^2, w_k = n_k^-gamma normalised to sum to K."""
    import argparse
    model = Tiny()
    args = argparse.Namespace(epochs=10, glmc_label_weighting=1.2, glmc_consistency=4.0)
    counts = [50, 10, 2]
    glmc = methods.glmc.GLMC(model, 3, counts, args)
    glmc.set_epoch(0)
    weights = torch.tensor(counts, dtype=torch.float64) ** -1.2
    assert glmc.label_weights.tolist() == pytest.approx((weights / weights.sum() * 3).tolist(), rel=1e-6)
    torch.manual_seed(2)
    views = [torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)]
    partner = [torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)]
    labels, others = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])
    lam = 0.7

    class FixedLambda:  # lam fixed, the box drawn as GLMC draws it
        def __init__(self, seed):
            self.rng = np.random.default_rng(seed)

        def beta(self, a, b):
            return lam

        def integers(self, high):
            return self.rng.integers(high)

    glmc.rng = FixedLambda(5)
    loss, _, _ = glmc.loss(model, views, labels, None, epoch=3, partner=(partner, others))
    mixed = lam * views[0] + (1 - lam) * partner[0]
    cut = methods.glmc.glmc_cutmix(views[1], partner[1], lam, FixedLambda(5))
    share = 1 - (3 / 10) ** 2
    onehot = lambda y: F.one_hot(y, 3).float()  # noqa: E731
    plain_t = lam * onehot(labels) + (1 - lam) * onehot(others)
    w = glmc.label_weights
    weighted_t = lam * w[labels, None] * onehot(labels) + (1 - lam) * w[others, None] * onehot(others)
    total = 0.0
    embeddings = []
    for images in (mixed, cut):
        features = torch.relu(model.body(images.flatten(1)))
        rebalanced, plain = model.fc(features), glmc.heads["plain"](features)
        z = glmc.heads["projection"](features)
        embeddings.append((z, glmc.heads["predictor"](z)))
        total += share * -(plain_t * torch.log_softmax(plain, 1)).sum(1).mean()
        total += (1 - share) * -(weighted_t * torch.log_softmax(rebalanced, 1)).sum(1).mean()
    (z_mix, p_mix), (z_cut, p_cut) = embeddings
    total += 4.0 * (-F.cosine_similarity(p_mix, z_cut).mean() - F.cosine_similarity(p_cut, z_mix).mean())
    assert loss.item() == pytest.approx(total.item(), rel=1e-5)


def test_glmc_cutmix_box_is_their_ceil_box():
    rng = np.random.default_rng(0)
    images, others = torch.zeros(1, 1, 10, 10), torch.ones(1, 1, 10, 10)
    areas = set()
    for _ in range(300):
        pasted = methods.glmc.glmc_cutmix(images, others, 0.64, rng)  # ceil(10 * 0.6) = 6: rows cy-3 .. cy+3
        rows, cols = torch.nonzero(pasted[0, 0], as_tuple=True)
        assert rows.max() - rows.min() + 1 <= 6 and cols.max() - cols.min() + 1 <= 6
        areas.add(int(pasted.sum()))
    assert max(areas) == 36


def test_glmc_heads_start_as_their_linear_layers():
    """Their network starts every linear layer, the re-balanced head included, with kaiming_normal_ (std
    sqrt(2 / fan_in); model/ResNet_cifar.py L5-8, L78), not with PyTorch's default (std 1 / sqrt(3 fan_in)); a
    classifier of trained weights (--init_from) is kept."""
    import argparse
    args = argparse.Namespace(epochs=10, glmc_label_weighting=1.2, glmc_consistency=4.0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    counts = list(range(100, 0, -10))
    torch.manual_seed(0)
    glmc = methods.glmc.GLMC(model, 10, counts, args)
    layers = {"re-balanced": model[2], **{name: module for name, module in glmc.heads.named_modules()
                                          if isinstance(module, torch.nn.Linear)}}
    assert sorted(layers) == ["plain", "predictor.layers", "projection.layers", "re-balanced"]
    for name, layer in layers.items():
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / layer.in_features), rel=0.1), name
    trained = model[2].weight.detach().clone()
    methods.glmc.GLMC(model, 10, counts, argparse.Namespace(**vars(args), init_from="a run"))
    assert torch.equal(model[2].weight, trained)
    torch.manual_seed(0)
    default = torch.nn.Sequential(torch.nn.Linear(4, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    start = default[2].weight.detach().clone()
    methods.glmc.GLMC(default, 10, counts, argparse.Namespace(**vars(args), glmc_init="default"))
    assert torch.equal(default[2].weight, start)  # PyTorch's start, as GLMC runs before the fix had it


def test_a_glmc_run_of_the_old_start_is_trained_again(trained):
    """A run that records no --glmc_init (trained before their start was found) differs from what a plan's GLMC row
    trains now, so 3_run.sh trains it again instead of reusing it."""
    import json

    import runs
    from conftest import TRAINED_FLAGS, run_dir_of
    run_dir = run_dir_of(trained)
    config = json.loads((run_dir / "config.json").read_text())
    flags = [*TRAINED_FLAGS, "--objective=ERM", "--method=glmc"]
    config["args"].update(method="glmc", glmc_label_weighting=1.2, glmc_consistency=4.0, glmc_resample=0.0)
    config["args"].pop("glmc_init", None)  # as a run saved before the flag existed
    (run_dir / "config.json").write_text(json.dumps(config))
    assert runs.run_settings(run_dir)["glmc_init"] == "default"  # what such a run did: PyTorch's start
    assert "glmc_init" in runs.differences(run_dir, flags)
    config["args"]["glmc_init"] = "kaiming"
    (run_dir / "config.json").write_text(json.dumps(config))
    assert "glmc_init" not in runs.differences(run_dir, flags)


def test_two_views_of_an_image_differ_and_repeat_under_a_seed(workdir):
    split = loader.load_splits(workdir / "a_datasets", "tiny")["train"]

    def views(seed):
        stream = loader.BatchStream(split, 16, 16, 24, train=True, device="cpu", augment="crop_flip", seed=seed,
                                    progress=False)
        stream.set_normalization([0.5] * 3, [0.25] * 3)
        stream.set_views(("train", augment.sim_view))
        stream.set_epoch(0)
        torch.manual_seed(seed)
        (first, second), labels = next(iter(stream))
        return first, second

    a, b = views(3)
    again_a, again_b = views(3)
    assert not torch.equal(a, b) and torch.equal(a, again_a) and torch.equal(b, again_b)
    assert not torch.equal(a, views(4)[0])


@pytest.mark.parametrize("extra", [["--method=bcl", "--objective=LA", "--normed_head", "--projection_hidden=16", "--projection_out=8"],
                                   ["--method=glmc"]])
def test_a_methods_heads_are_trained_saved_for_resume_and_absent_from_evaluation(workdir, extra):
    result = call("1_train.py", *FAST, "--epochs=2", *extra, cwd=workdir)
    assert result.returncode == 0, result.stderr
    objective = "LA" if "--objective=LA" in extra else "ERM"
    run_dir = run_dir_of(workdir, objective)
    last = torch.load(run_dir / "last.pth", weights_only=True)
    best = torch.load(runs.best_checkpoint_path(run_dir), weights_only=True)
    assert last["method_heads"] and "method_heads" not in best
    assert not [key for key in best["model"] if "projection" in key or "prototypes" in key or "plain" in key]
    for script_name, argv in (("2_test.py", []), ("predict.py", ["--images", "a_datasets/tiny/test"])):
        evaluated = call(script_name, "--model_index=41", "--dataset=tiny", f"--objective={objective}",
                         "--datetime=latest", *argv, cwd=workdir)
        assert evaluated.returncode == 0, evaluated.stderr


def test_mislas_second_stage_fine_tunes_the_classifier_and_scales_and_shifts_batch_norm(trained):
    """--lws --lws_classifier_lr 0.5: the classifier at half the lr beside the scales (at the full lr); with
    --bn_stats update the running statistics move and no backbone weight does."""
    start = run_dir_of(trained, "ERM")
    result = call("1_train.py", *FAST, "--epochs=1", "--objective=LAS", f"--init_from={start}", "--lws",
                  "--lws_classifier_lr=0.5", "--sampler=class_aware", "--schedule=cosine_each_epoch", "--no-warmup",
                  "--bn_stats=update", cwd=trained)
    assert result.returncode == 0, result.stderr
    run_dir = Path(re.search(r"run folder (\S+)", result.stdout).group(1))  # other tests train LAS here too
    state = torch.load(trained / run_dir / "last.pth", weights_only=True)
    before = torch.load(runs.best_checkpoint_path(start), weights_only=True)["model"]
    groups = state["optimizer"]["param_groups"]
    assert [group["initial_lr"] for group in groups] == pytest.approx([0.05, 0.025])
    assert not torch.equal(state["model"]["fc.classifier.weight"], before["fc.weight"])
    assert not torch.equal(state["model"]["fc.scales"], torch.ones(3))
    for name, value in before.items():
        if not name.startswith("fc."):
            moved = not torch.equal(state["model"][name], value)
            assert moved == name.endswith(("running_mean", "running_var", "num_batches_tracked")), name


@pytest.mark.parametrize("extra, message", [
    (["--method=glmc", "--objective=LA"], "give --objective ERM"),
    (["--method=bcl", "--mix=mixup"], "does not go with --mix"),
    (["--bcl_beta=0.6"], "--bcl_beta has no effect without --method bcl"),
    (["--lws_classifier_lr=0.5"], "--lws_classifier_lr has no effect without --lws"),
])
def test_method_flags_out_of_place_are_refused(workdir, extra, message):
    result = call("1_train.py", *FAST, *extra, cwd=workdir)
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize("extra", [["--method=bcl", "--objective=LA", "--projection_hidden=16", "--projection_out=8"], ["--method=glmc"]])
def test_method_runs_resume_exactly(workdir, monkeypatch, extra):
    train = script("1_train")
    argv = [*FAST, "--epochs=3", *extra]
    monkeypatch.chdir(workdir)
    assert run_cli(train.main, train.get_args_parser(), argv) == 0
    objective = "LA" if "--objective=LA" in extra else "ERM"
    (reference,) = (workdir / "logs" / "SimpleCNN" / "tiny" / objective).iterdir()
    reference_csv = (reference / "valid.csv").read_text()
    reference.rename(workdir / "reference")
    original, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):
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
