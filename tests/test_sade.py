"""SADE (methods/sade.py): the three expert losses by hand, the rank-reversed prior with a tie, and the test-time
aggregation on a case whose answer is known: the weights go to the expert whose predictions hold still on the
images that dominate the test set, by count or by the test prior."""
import argparse
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import criterion
import loader
import stats
from b_models.simple_cnn import SimpleCNN
from conftest import FAST, call
from methods.sade import SADE, aggregate_experts, expert_logits_of, inverse_prior, tta_view
from runtime import Runtime
from utils import UserError


def test_inverse_prior_reverses_the_ranks_and_ties_keep_class_order():
    assert inverse_prior(torch.tensor([5, 1, 3]) / 9).tolist() == pytest.approx([1 / 9, 5 / 9, 3 / 9])
    # Classes 1 and 2 tie: ranks 0 and 1 in class order, so they take the largest and the middle value.
    assert inverse_prior(torch.tensor([0.5, 0.25, 0.25])).tolist() == [0.25, 0.5, 0.25]


def cross_entropy_by_hand(rows, labels):
    """The batch mean of ``-z_y + log sum_j exp z_j``."""
    return sum(-row[y] + math.log(sum(math.exp(z) for z in row)) for row, y in zip(rows, labels)) / len(rows)


def test_the_three_expert_losses_are_their_sum_by_hand():
    counts, tau = [6, 3, 3], 2.0  # prior (0.5, 0.25, 0.25), inverse prior (0.25, 0.5, 0.25): a tie
    expert_logits = torch.tensor([[[2.0, 0.5, -1.0], [0.3, 1.2, 0.1], [-0.4, 0.0, 2.5]],
                                  [[0.0, 1.0, 0.5], [1.5, -0.5, 0.2], [0.7, 0.7, -0.3]]])
    labels = [1, 2]
    sade = SADE(None, 3, counts, argparse.Namespace(sade_tau=tau))
    loss, logits, scored = sade.loss(lambda images, experts: expert_logits, None, torch.tensor(labels), None, 0)
    prior, inverse = [0.5, 0.25, 0.25], [0.25, 0.5, 0.25]
    rows = expert_logits.tolist()
    forward = [row[0] for row in rows]
    uniform = [[z + math.log(p + 1e-9) for z, p in zip(row[1], prior)] for row in rows]
    backward = [[z + math.log(p + 1e-9) - tau * math.log(q + 1e-9) for z, p, q in zip(row[2], prior, inverse)]
                for row in rows]
    expected = sum(cross_entropy_by_hand(adjusted, labels) for adjusted in (forward, uniform, backward))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.equal(logits, expert_logits.mean(dim=1)) and scored.tolist() == labels


def test_network_is_three_experts_and_the_loss_trains_them():
    network = SADE.network(SimpleCNN(num_classes=3, width=4), {}, 3)
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    assert network(images, experts=True).shape == (4, 3, 3)
    sade = SADE(network, 3, [6, 3, 1], argparse.Namespace(sade_tau=2.0))
    loss, _, _ = sade.loss(network, images, labels, None, 0)
    loss.backward()
    assert all(head.weight.grad.abs().sum() > 0 for head in network.heads)
    with pytest.raises(UserError, match="--method sade"):
        SADE.network(torch.nn.Linear(3, 3), {}, 3)


def test_maxnorm_is_refused():
    args = argparse.Namespace(mix=None, sam_rho=0, lws=False, freeze_backbone=False, objective="ERM", maxnorm=0.1)
    with pytest.raises(UserError, match="--maxnorm"):
        SADE.check(args, criterion.get_objective("ERM"))
    SADE.check(argparse.Namespace(**{**vars(args), "maxnorm": 0}), criterion.get_objective("ERM"))


def test_tta_view_keeps_the_image_shape():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 16, 12), dtype=torch.uint8)
    views = [tta_view(16, 12)(image) for _ in range(4)]
    assert all(view.shape == image.shape and view.dtype == torch.uint8 for view in views)
    assert any(not torch.equal(view, image) for view in views)


SIZE = 16


class TwoSteadyExperts(torch.nn.Module):
    """Expert 0 says "dark" (class 0) with confidence on dark images and expert 1 "bright" (class 1) on bright ones;
    otherwise, and expert 2 always, the logits are a fixed random projection of the pixels, which moves with every
    crop, flip and jitter.  So on dark images only expert 0's predictions hold still between two views, on bright
    ones only expert 1's, and the aggregation should weight the expert of the images that dominate."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("projection", torch.randn(3 * SIZE * SIZE, 3, 2, generator=generator))

    def forward(self, x, experts=False):
        texture = x.flatten(1) - x.mean(dim=(1, 2, 3))[:, None]
        logits = torch.einsum("nd,dek->nek", texture, self.projection)
        bright = x.mean(dim=(1, 2, 3)) > 0.3  # pixels / 255: dark images below 0.25, bright ones above 0.4
        logits[~bright, 0] = torch.tensor([4.0, 0.0])
        logits[bright, 1] = torch.tensor([0.0, 4.0])
        return logits if experts else logits.mean(dim=1)


@pytest.fixture(scope="module")
def skewed_stream(tmp_path_factory):
    """24 dark and 8 bright textured images (classes 0 and 1), normalised with mean 0 and std 1: pixels / 255."""
    root = tmp_path_factory.mktemp("sade") / "skewed"
    rng = np.random.default_rng(0)
    for label, (name, count, low) in enumerate((("0_dark", 24, 0), ("1_bright", 8, 195))):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(low, low + 61, (SIZE, SIZE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    split = loader.load_splits(root.parent, "skewed", ("train",))["train"]
    stream = loader.BatchStream(split, SIZE, SIZE, 8, train=False, device="cpu", progress=False)
    stream.set_normalization([0.0] * 3, [1.0] * 3)
    return stream


def aggregate(stream, class_prior=None, **settings):
    settings = {"sade_tta_epochs": 5, "sade_tta_lr": 0.1, "sade_tta_batch": 8, "sade_tta_weight_decay": 5e-4, "seed": 0,
                **settings}
    return aggregate_experts(TwoSteadyExperts(), stream, Runtime(), settings, class_prior)


def test_aggregation_weights_the_expert_that_holds_still_on_the_test_set(skewed_stream):
    model = TwoSteadyExperts()
    logits, learned = aggregate(skewed_stream)
    weights = learned["aggregation_weights"]
    assert weights[0] > 1 / 3 and weights[0] == max(weights) and learned["aggregation_epochs"] == 5
    experts, labels = expert_logits_of(model, skewed_stream, Runtime())
    assert labels.tolist() == [0] * 24 + [1] * 8  # file order
    assert logits.dtype == np.float32 and np.allclose(logits, (torch.tensor(weights)[:, None] * experts).sum(1))
    assert aggregate(skewed_stream)[1] == learned  # the run's seed draws the same views and order

    # A test prior of 90 % bright images weights the 8 bright ones up: now expert 1 holds still where it counts.
    _, shifted = aggregate(skewed_stream, class_prior=[0.1, 0.9])
    assert shifted["aggregation_weights"][1] > 1 / 3 and shifted["aggregation_weights"][1] == max(
        shifted["aggregation_weights"])


def test_aggregation_stops_after_the_epoch_that_leaves_a_weight_below_005(skewed_stream):
    _, learned = aggregate(skewed_stream, sade_tta_lr=1.0)
    assert learned["aggregation_epochs"] == 1 and round(min(learned["aggregation_weights"]), 2) < 0.05
    assert aggregate(skewed_stream, sade_tta_lr=1.0, sade_tta_epochs=1)[1] == learned
    _, untrained = aggregate(skewed_stream, sade_tta_epochs=0)
    assert untrained == {"aggregation_weights": pytest.approx([1 / 3] * 3), "aggregation_epochs": 0}


def test_a_sade_run_is_aggregated_again_under_each_test_prior(workdir):
    """Trained, then evaluated as its plan row is (--test_prior all): the aggregation beside the plain mean, and
    learned again under each of the eleven priors, each with its own weights."""
    trained = call("1_train.py", *FAST, "--epochs=1", "--method=sade", "--normed_head", "--normed_scale=30",
                   "--sade_tta_epochs=2", cwd=workdir)
    assert trained.returncode == 0, trained.stderr
    tested = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                  "--test_prior=all", "--resamples=200", cwd=workdir)
    assert tested.returncode == 0, tested.stderr
    (run_dir,) = (workdir / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir()
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert len(metrics["aggregated"]["aggregation_weights"]) == 3
    learned = {name: metrics["test_priors"][name]["aggregated"] for name in stats.SHIFTED_PRIORS}
    assert all(len(entry["aggregation_weights"]) == 3 and 0 <= entry["acc"] <= 100 for entry in learned.values())
    assert math.isclose(sum(learned["forward-50"]["aggregation_weights"]), 1.0, rel_tol=1e-5)
    assert learned["forward-50"]["aggregation_weights"] != learned["backward-50"]["aggregation_weights"]
