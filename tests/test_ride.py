"""RIDE (methods/ride.py) and its multi-expert network (methods/experts.py): the network's layout and sizes against a
hand count, and the loss against one written out with numpy."""
import argparse

import numpy as np
import pytest
import torch
import torch.nn as nn

import criterion
import methods
from methods.experts import multi_expert
from b_models.heads import NormedLinear, find_classifier
from b_models.simple_cnn import SimpleCNN
from get_model import build_network
from methods.ride import RIDE
from train_args import get_args_parser
from utils import UserError


def parameters(module):
    return sum(parameter.numel() for parameter in module.parameters())


def stage_parameters(in_planes, planes, blocks):
    """A stage of basic blocks: two 3x3 convolutions without bias and two batch norms (2 x planes) each; the
    shortcut of the first (zero padding) has none."""
    first = 9 * in_planes * planes + 9 * planes * planes + 4 * planes
    return first + (blocks - 1) * (18 * planes * planes + 4 * planes)


def test_resnet32_with_three_experts_has_the_hand_counted_size_and_averages_its_experts():
    model = multi_expert(build_network(43, 100, normed_head=True), 3)  # ResNet-32, cosine head, as RIDE's CIFAR-100
    stem = 9 * 3 * 16 + 2 * 16
    assert parameters(model.shared) == stem + stage_parameters(16, 16, 5) == 23_824
    expert = stage_parameters(16, 24, 5) + stage_parameters(24, 48, 5) + 48 * 100  # NormedLinear(48, 100): no bias
    assert [parameters(branch) + parameters(head) for branch, head in zip(model.branches, model.heads)] == \
        [expert] * 3 == [253_344] * 3
    assert model.num_experts == 3
    assert all(isinstance(head, NormedLinear) and head.in_features == 48 for head in model.heads)
    model.eval()
    images = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        stacked, mean = model(images, experts=True), model(images)
    assert stacked.shape == (2, 3, 100) and mean.shape == (2, 100)
    assert torch.allclose(mean, stacked.mean(dim=1))


def test_one_full_width_expert_is_the_network_itself_in_size():
    plain = build_network(43, 10)
    assert parameters(multi_expert(build_network(43, 10), 1, reduce=False)) == parameters(plain)


def test_simple_cnn_experts_are_three_quarters_as_wide_with_linear_heads():
    model = multi_expert(SimpleCNN(10, width=8), 2)
    widths = [layer.out_channels for layer in model.branches[0].modules() if isinstance(layer, nn.Conv2d)]
    assert widths == [12, 12, 24]  # 2w, 2w, 4w = 16, 16, 32, each times 3/4
    assert all(type(head) is nn.Linear and head.in_features == 24 and head.bias is not None for head in model.heads)
    assert model(torch.randn(3, 3, 28, 28), experts=True).shape == (3, 2, 10)


def test_a_network_without_a_multi_expert_layout_is_refused_in_one_line():
    with pytest.raises(ValueError, match="41-46") as error:
        multi_expert(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), 3)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="--method ride: .*41-46"):
        RIDE.network(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), {"ride_experts": 3, "ride_reduce": True}, 3)


def test_find_classifier_refuses_a_multi_expert_network_even_wrapped():
    model = multi_expert(SimpleCNN(5, width=4), 2)
    for network in (model, nn.Sequential(model)):
        with pytest.raises(ValueError, match="classifier per expert"):
            find_classifier(network)


def test_maxnorm_and_a_reweight_factor_without_drw_are_refused():
    args = argparse.Namespace(method="ride", mix=None, sam_rho=0.0, lws=False, freeze_backbone=False,
                              objective="LDAM", maxnorm=0.1, drw=True, ride_reweight_factor=0.05)
    with pytest.raises(UserError, match="--maxnorm .*--method ride network has several experts") as error:
        RIDE.check(args, criterion.get_objective("LDAM"))
    assert "\n" not in str(error.value)
    args.maxnorm = 0
    RIDE.check(args, criterion.get_objective("LDAM"))
    args.drw, args.ride_reweight_factor = False, 0.1
    with pytest.raises(UserError, match="--ride_reweight_factor has no effect without --drw"):
        RIDE.check(args, criterion.get_objective("LDAM"))


def test_the_flags_and_their_defaults():
    args = get_args_parser().parse_args(["--method", "ride", "--objective", "LDAM", "--drw"])
    assert methods.get("ride") is RIDE and all(flag.startswith("ride_") for flag in RIDE.flags)
    assert (args.ride_experts, args.ride_reduce, args.ride_diversity, args.ride_temperature,
            args.ride_reweight_factor) == (3, True, -0.45, 1.0, 0.05)
    assert get_args_parser().parse_args(["--method", "ride", "--no-ride_reduce"]).ride_reduce is False


class FixedExperts(nn.Module):
    """Gives the expert logits it was built with (cosines, [batch, experts, classes]), and counts its calls."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.calls = logits, []

    def forward(self, images, experts=False):
        self.calls.append(experts)
        return self.logits if experts else self.logits.mean(dim=1)


COUNTS = [100, 10, 1]
COSINES = [[[0.30, -0.10, 0.05], [0.10, 0.20, -0.20]],  # image 0: expert 0, expert 1
           [[-0.05, 0.15, 0.10], [0.20, -0.10, 0.25]]]  # image 1
LABELS = [0, 2]


def ride_by_hand(reweighted, factor=-0.45, scale=30.0):
    """Their RIDELoss written out: per expert, LDAM (margins 0.5 (n_min / n_c)^(1/4) taken off the target's x30
    logit; CE; after the re-weighting epoch class-balanced weights, beta 0.9999, summing to K, reduced by the
    weighted mean), plus factor * mean(T)^2 * KL(p_mean || q_expert) at temperature T (1, or per class afterwards)."""
    counts, z, labels = np.array(COUNTS, float), scale * np.array(COSINES), np.array(LABELS)
    batch, experts, classes = z.shape
    margins = 0.5 * (counts.min() / counts) ** 0.25
    weights = (1 - 0.9999) / (1 - 0.9999 ** counts)
    weights = weights / weights.sum() * classes if reweighted else np.ones(classes)
    temperature = classes * counts / counts.sum() * 0.05 + 0.95
    temperature = temperature / temperature.max() if reweighted else np.ones(classes)

    def log_softmax(x):
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    total = 0.0
    log_mean = log_softmax(z.mean(axis=1) / temperature)
    for expert in range(experts):
        adjusted = z[:, expert].copy()
        adjusted[np.arange(batch), labels] -= scale * margins[labels]
        ce = -log_softmax(adjusted)[np.arange(batch), labels]
        total += (weights[labels] * ce).sum() / weights[labels].sum()
        kl = (np.exp(log_mean) * (log_mean - log_softmax(z[:, expert] / temperature))).sum() / batch
        total += factor * temperature.mean() ** 2 * kl
    return total


def ride_method(objective="LDAM", drw_epoch=3, diversity=-0.45):
    args = argparse.Namespace(ride_diversity=diversity, ride_temperature=1.0, ride_reweight_factor=0.05,
                              objective=objective, ldam_scale=30.0, drw=True, drw_epoch=drw_epoch)
    return RIDE(None, len(COUNTS), COUNTS, args)


@pytest.mark.parametrize("epoch", [0, 2, 3, 7])
def test_the_loss_is_ldam_drw_per_expert_plus_the_diversity_term_by_hand(epoch):
    method, loss_fn = ride_method(), criterion.get_criterion("LDAM", 3, COUNTS, drw=True, drw_epoch=3)
    model = FixedExperts(torch.tensor(COSINES, dtype=torch.float64))
    loss_fn.set_epoch(epoch)
    method.set_epoch(epoch)
    total, logits, scored = method.loss(model, None, torch.tensor(LABELS), loss_fn, epoch)
    assert model.calls == [True]  # one forward pass for every expert
    assert total.item() == pytest.approx(ride_by_hand(reweighted=epoch >= 3), rel=1e-6)
    assert torch.equal(logits, model.logits.mean(dim=1)) and scored.tolist() == LABELS


def test_without_diversity_each_experts_term_is_on_the_mean_logits_as_theirs():
    method, loss_fn = ride_method(diversity=0.0), criterion.get_criterion("LDAM", 3, COUNTS)
    model, labels = FixedExperts(torch.tensor(COSINES, dtype=torch.float64)), torch.tensor(LABELS)
    total = method.loss(model, None, labels, loss_fn, 0)[0]
    assert total.item() == pytest.approx(2 * loss_fn(model.logits.mean(dim=1), labels).item(), rel=1e-9)


@pytest.mark.parametrize("objective, scale", [("ERM", 1.0), ("LDAM", 30.0)])
def test_the_diversity_gradient_by_hand(objective, scale):
    """d/dz_e of factor * sum_e KL(p || q_e) / B is factor * s * (q_e - p) / B, p and q_e the softmax of s times the
    mean and the expert's cosines: LDAM's s, as their logits carry it.  (The gradient through p is zero whether or
    not p is held fixed, as their code holds it: sum_e d KL / dp is the same for every class.)"""
    cosines = torch.tensor(COSINES, dtype=torch.float64, requires_grad=True)
    method = ride_method(objective=objective)
    assert method.logit_scale == scale
    no_base_term = lambda logits, labels: 0 * logits.sum()  # noqa: E731
    method.loss(FixedExperts(cosines), None, torch.tensor(LABELS), no_base_term, 0)[0].backward()
    q, p = torch.softmax(scale * cosines.detach(), dim=2), torch.softmax(scale * cosines.detach().mean(dim=1), dim=1)
    assert torch.allclose(cosines.grad, -0.45 * scale * (q - p[:, None]) / 2)


def test_the_temperature_per_class_starts_with_drw_and_never_without_it():
    method = ride_method(drw_epoch=5)
    method.set_epoch(4)
    assert method.temperature.shape == () and method.mean_temperature == 1.0
    method.set_epoch(5)
    counts = np.array(COUNTS, float)
    expected = 3 * counts / counts.sum() * 0.05 + 0.95
    assert method.temperature.tolist() == pytest.approx((expected / expected.max()).tolist())
    method = RIDE(None, 3, COUNTS, argparse.Namespace(ride_diversity=-0.45, ride_temperature=1.0,
                                                      ride_reweight_factor=0.05, objective="LA", drw=False,
                                                      drw_epoch=None))
    method.set_epoch(100)
    assert method.temperature.shape == ()
