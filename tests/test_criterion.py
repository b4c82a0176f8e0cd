"""Losses against independent per-sample formulas written with NumPy."""
import math

import numpy as np
import pytest
import torch

import criterion
from criterion import ComplementEntropy, complement_entropy, get_criterion

KS = (2, 3, 10, 100)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def ref_ce(z, g):
    return -math.log(softmax(z)[g])


def ref_complement(z, g):
    p = softmax(z)
    q = [p[j] / (1 - p[g]) for j in range(len(z)) if j != g]
    return -sum(x * math.log(x) for x in q if x > 0)


def ref_focal(z, g, gamma=2.0):
    p = softmax(z)[g]
    return -((1 - p) ** gamma) * math.log(p)


def batch(k, n=16, seed=0, scale=3.0):
    rng = np.random.default_rng(seed + k)
    z = rng.normal(0, scale, (n, k))
    y = rng.integers(0, k, n)
    return z, y, torch.tensor(z, dtype=torch.float64), torch.tensor(y)


def mean(values):
    return float(np.mean(values))


@pytest.mark.parametrize("k", KS)
def test_erm_is_cross_entropy(k):
    z, y, zt, yt = batch(k)
    expected = mean([ref_ce(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("ERM", k)(zt, yt).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("gamma", (5, 1, -1))
def test_cce_matches_formula(k, gamma):
    z, y, zt, yt = batch(k)
    expected = mean([ref_ce(z[i], y[i]) - gamma / (k - 1) * ref_complement(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("CCE", k, ccegamma=gamma)(zt, yt).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("k", KS)
def test_cot_steps(k):
    z, y, zt, yt = batch(k)
    assert get_criterion("COT", k)(zt, yt).item() == pytest.approx(mean([ref_ce(z[i], y[i]) for i in range(len(y))]), abs=1e-5)
    expected = mean([-ref_complement(z[i], y[i]) / (k - 1) for i in range(len(y))])
    assert ComplementEntropy(k)(zt, yt).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("k", KS)
def test_focal_matches_formula(k):
    z, y, zt, yt = batch(k)
    expected = mean([ref_focal(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("FL", k)(zt, yt).item() == pytest.approx(expected, abs=1e-5)


def test_float32_inputs_match_formula():
    z, y, zt, yt = batch(10)
    expected = mean([ref_ce(z[i], y[i]) - 5 / 9 * ref_complement(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("CCE", 10, ccegamma=5)(zt.float(), yt).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("loss", [
    get_criterion("CCE", 5, ccegamma=3), get_criterion("FL", 5), ComplementEntropy(5)])
def test_gradcheck(loss):
    z = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    assert torch.autograd.gradcheck(lambda logits: loss(logits, y), (z,))


def test_cce_prefers_flat_incorrect_classes():
    """Same p_g = 0.6: CCE (gamma > 0) is lower when the other 0.4 is spread evenly; ERM is equal."""
    target = torch.tensor([0])
    flat = torch.tensor([[0.6, 0.1, 0.1, 0.1, 0.1]]).log()
    peaked = torch.tensor([[0.6, 0.37, 0.01, 0.01, 0.01]]).log()
    cce, erm = get_criterion("CCE", 5), get_criterion("ERM", 5)
    assert cce(flat, target) < cce(peaked, target)
    assert erm(flat, target).item() == pytest.approx(erm(peaked, target).item(), abs=1e-6)
    negative = get_criterion("CCE", 5, ccegamma=-1)
    assert negative(flat, target) > negative(peaked, target)


@pytest.mark.parametrize("objective", criterion.OBJECTIVES)
@pytest.mark.parametrize("k", (2, 10))
def test_extreme_logits_stay_finite(objective, k):
    counts = list(range(1, k + 1))
    loss = get_criterion(objective, k, class_counts=counts)
    y = torch.arange(4) % k
    for z in (torch.full((4, k), -1e4), torch.randn(4, k) * 1e4,
              torch.nn.functional.one_hot(y, k) * 1e4,  # perfectly confident and correct
              -torch.nn.functional.one_hot(y, k) * 1e4):
        z = z.clone().requires_grad_(True)
        value = loss(z, y)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(z.grad).all(), (objective, z)
    z = torch.randn(4, k, requires_grad=True)
    ComplementEntropy(k)(z * 1e4, y).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
@pytest.mark.parametrize("objective", criterion.OBJECTIVES)
def test_half_precision_logits(dtype, objective):
    z, y, zt, yt = batch(10)
    loss = get_criterion(objective, 10, class_counts=[5] * 10)
    half = (zt * 100).to(dtype).requires_grad_(True)
    value = loss(half, yt)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(half.grad.float()).all()
    close = loss(half.detach().double(), yt)
    assert value.item() == pytest.approx(close.item(), rel=1e-4, abs=1e-4)


def test_complement_entropy_ignores_true_logit():
    z = torch.randn(3, 6, dtype=torch.float64)
    y = torch.tensor([1, 2, 3])
    shifted = z.clone()
    shifted[torch.arange(3), y] += 7.0
    assert torch.allclose(complement_entropy(z, y), complement_entropy(shifted, y))


def test_unknown_objective_names_valid_ones():
    with pytest.raises(ValueError, match="ERM, CCE, COT, FL"):
        get_criterion("XYZ", 3)


# ---------------------------------------------------------------- long-tail baselines

def test_class_balanced_weights_formula():
    counts, beta = [100, 10, 1], 0.99
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    expected = [w / sum(raw) * 3 for w in raw]
    assert criterion.effective_number_weights(counts, beta).tolist() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("objective", ("ERM", "CCE", "FL"))
def test_class_balanced_weighting(objective):
    z, y, zt, yt = batch(4)
    counts, beta = [40, 20, 5, 2], 0.999
    weights = criterion.effective_number_weights(counts, beta).double().numpy()
    per_sample = {"ERM": lambda a, b: ref_ce(a, b),
                  "CCE": lambda a, b: ref_ce(a, b) - 5 / 3 * ref_complement(a, b),
                  "FL": lambda a, b: ref_focal(a, b)}[objective]
    expected = mean([weights[y[i]] * per_sample(z[i], y[i]) for i in range(len(y))])
    loss = get_criterion(objective, 4, ccegamma=5, class_counts=counts, class_balanced=True, cb_beta=beta)
    assert loss(zt, yt).item() == pytest.approx(expected, abs=1e-5)
    assert get_criterion("CB", 4, class_counts=counts, cb_beta=beta)(zt, yt).item() == pytest.approx(
        mean([weights[y[i]] * ref_ce(z[i], y[i]) for i in range(len(y))]), abs=1e-5)
    # --cb_reduction weighted: sum_i w l_i / sum_i w, Cao et al.'s re-weighting
    weighted = sum(weights[y[i]] * per_sample(z[i], y[i]) for i in range(len(y))) / sum(weights[y[i]] for i in range(len(y)))
    loss = get_criterion(objective, 4, ccegamma=5, class_counts=counts, class_balanced=True, cb_beta=beta,
                         cb_reduction="weighted")
    assert loss(zt, yt).item() == pytest.approx(weighted, abs=1e-5)


def test_weighted_class_balanced_loss_is_cross_entropy_with_weights():
    z, y, zt, yt = batch(5)
    counts = [500, 120, 40, 9, 3]
    weights = criterion.effective_number_weights(counts, 0.9999).double()
    expected = torch.nn.functional.cross_entropy(zt, yt, weight=weights)
    loss = get_criterion("CB", 5, class_counts=counts, cb_reduction="weighted")
    assert loss(zt, yt).item() == pytest.approx(expected.item(), rel=1e-6)
    assert get_criterion("CB", 5, class_counts=counts)(zt, yt).item() != pytest.approx(expected.item(), rel=1e-3)


@pytest.mark.parametrize("k", (3, 10))
def test_balanced_softmax_and_logit_adjustment(k):
    z, y, zt, yt = batch(k)
    counts = np.arange(1, k + 1) * 7
    bs = mean([ref_ce(z[i] + np.log(counts), y[i]) for i in range(len(y))])
    la = mean([ref_ce(z[i] + 0.5 * np.log(counts / counts.sum()), y[i]) for i in range(len(y))])
    assert get_criterion("BS", k, class_counts=counts)(zt, yt).item() == pytest.approx(bs, abs=1e-5)
    assert get_criterion("LA", k, class_counts=counts, la_tau=0.5)(zt, yt).item() == pytest.approx(la, abs=1e-5)


def test_equal_counts_make_bs_and_la_plain_cross_entropy():
    z, y, zt, yt = batch(5)
    ce = get_criterion("ERM", 5)(zt, yt).item()
    for objective in ("BS", "LA"):
        assert get_criterion(objective, 5, class_counts=[30] * 5)(zt, yt).item() == pytest.approx(ce, abs=1e-6)


def test_ldam_matches_formula():
    z, y, zt, yt = batch(4, scale=0.3)
    counts = np.array([200, 50, 10, 3])
    margins = counts ** -0.25
    margins = margins * 0.5 / margins.max()
    expected = mean([ref_ce(30 * (z[i] - margins[y[i]] * np.eye(4)[y[i]]), y[i]) for i in range(len(y))])
    loss = get_criterion("LDAM", 4, class_counts=counts)
    assert loss.margins[3].item() == pytest.approx(0.5)  # the rarest class gets the max margin
    assert loss.margins[0].item() == pytest.approx(0.5 * (3 / 200) ** 0.25, rel=1e-5)
    assert loss(zt, yt).item() == pytest.approx(expected, rel=1e-5)


def test_drw_switches_weights_at_its_epoch():
    counts = [100, 10, 2]
    loss = get_criterion("LDAM", 3, class_counts=counts, drw=True, drw_epoch=3)
    z, y, zt, yt = batch(3)
    values = []
    for epoch in range(5):
        loss.set_epoch(epoch)
        values.append(loss(zt, yt).item())
        assert (loss.class_weights is not None) == (epoch >= 3)
    assert values[0] == values[1] == values[2] != values[3] == values[4]
    assert loss.class_weights.tolist() == pytest.approx(criterion.effective_number_weights(counts, 0.9999).tolist())


def test_drw_is_a_weighted_mean_as_in_cao_et_al():
    """Cao et al. pass the DRW weights to F.cross_entropy(weight=...): sum_i w_gi l_i / sum_i w_gi."""
    z, y, zt, yt = batch(4, scale=0.3)
    counts = np.array([200, 50, 10, 3])
    loss = get_criterion("LDAM", 4, class_counts=counts, drw=True, drw_epoch=0)
    loss.set_epoch(0)
    weights = criterion.effective_number_weights(counts, 0.9999).double().numpy()
    margins = counts ** -0.25 * 0.5 / (counts ** -0.25).max()
    per_sample = [ref_ce(30 * (z[i] - margins[y[i]] * np.eye(4)[y[i]]), y[i]) for i in range(len(y))]
    expected = sum(weights[y[i]] * per_sample[i] for i in range(len(y))) / sum(weights[y[i]] for i in range(len(y)))
    assert loss(zt, yt).item() == pytest.approx(expected, rel=1e-5)
    adjusted = 30 * (zt - torch.as_tensor(margins, dtype=zt.dtype)[yt, None] * torch.nn.functional.one_hot(yt, 4))
    reference = torch.nn.functional.cross_entropy(adjusted, yt, weight=torch.as_tensor(weights, dtype=zt.dtype))
    assert loss(zt, yt).item() == pytest.approx(reference.item(), rel=1e-5)
    plain_mean = mean([weights[y[i]] * per_sample[i] for i in range(len(y))])
    assert abs(loss(zt, yt).item() - plain_mean) > 1e-3  # the two reductions differ on this batch


def test_default_drw_epoch_is_last_but_one_stage():
    assert criterion.default_drw_epoch([60, 60, 40, 40]) == 120
    assert criterion.default_drw_epoch([10, 5]) == 0
    assert criterion.default_drw_epoch([10]) == 0


def test_label_smoothing():
    z, y, zt, yt = batch(4)
    eps = 0.1
    expected = mean([(1 - eps) * ref_ce(z[i], y[i]) + eps * np.mean([ref_ce(z[i], j) for j in range(4)])
                     for i in range(len(y))])
    assert get_criterion("ERM", 4, label_smoothing=eps)(zt, yt).item() == pytest.approx(expected, abs=1e-5)
    cce = mean([(1 - eps) * ref_ce(z[i], y[i]) + eps * np.mean([ref_ce(z[i], j) for j in range(4)])
                - 5 / 3 * ref_complement(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("CCE", 4, ccegamma=5, label_smoothing=eps)(zt, yt).item() == pytest.approx(cce, abs=1e-5)


def test_objectives_needing_counts_say_so():
    with pytest.raises(ValueError, match="class counts"):
        get_criterion("LDAM", 3)


def test_fused_parts_stay_accurate_for_huge_logits():
    """CE and C of the fused function, float32 at |z| ~ 1e4, against a float64 masked-log-softmax reference."""
    torch.manual_seed(0)
    z = torch.randn(64, 10) * 1e4
    y = torch.randint(0, 10, (64,))
    z[:8, :] = 0.0
    z[torch.arange(8, 16), y[8:16]] = 1e4  # confident and correct
    ce, complement = criterion.cross_and_complement_entropy(z, y)
    z64 = z.double()
    mask = torch.nn.functional.one_hot(y, 10).bool()
    log_q = torch.log_softmax(z64.masked_fill(mask, float("-inf")), dim=1)
    reference = -(log_q.exp() * log_q.masked_fill(mask, 0)).sum(1)
    assert torch.allclose(ce.double(), torch.nn.functional.cross_entropy(z64, y, reduction="none"), rtol=1e-6, atol=1e-4)
    assert torch.allclose(complement.double(), reference, atol=1e-5)
    assert complement[:8].tolist() == pytest.approx([math.log(9)] * 8, abs=1e-6)  # uniform over 9 incorrect classes


def test_default_gamma_is_the_measured_one():
    """0.5: the best positive gamma on valid/ in the Fashion-MNIST-LT sweep (docs/results.md)."""
    import importlib
    z, y, zt, yt = batch(4)
    expected = mean([ref_ce(z[i], y[i]) - 0.5 / 3 * ref_complement(z[i], y[i]) for i in range(len(y))])
    assert get_criterion("CCE", 4)(zt, yt).item() == pytest.approx(expected, abs=1e-5)
    assert criterion.OPTIONS["ccegamma"].default == 0.5
    train = importlib.import_module("1_train")
    assert train.get_args_parser().parse_args([]).ccegamma == 0.5


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_gradient_stays_finite_when_the_true_class_is_certain(gamma):
    logits = torch.tensor([[17.0, 0.0, 0.0], [40.0, -3.0, 1.0], [0.2, 0.1, 0.0]], requires_grad=True)
    loss = get_criterion("FL", 3, focal_gamma=gamma)(logits, torch.tensor([0, 0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_cb_softmax_bce_is_weight_balancings_cb_loss_by_hand():
    """CB_loss(..., "softmax", 0.9999, 2.0) of Alshammari et al.'s stage 2: BCE on the softmax against one-hot labels,
    each entry weighted by its sample's class weight, the mean over the B x K entries (gamma unused)."""
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], dtype=torch.float64)
    targets = torch.tensor([0, 2])
    counts = [100, 10, 1]
    beta = 0.9999
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    weights = [3 * w / sum(raw) for w in raw]
    total = 0.0
    for row, target in zip(logits.tolist(), targets.tolist()):
        p = [math.exp(z) / sum(math.exp(v) for v in row) for z in row]
        total += weights[target] * sum(-math.log(p[j]) if j == target else -math.log(1 - p[j]) for j in range(3))
    expected = total / (2 * 3)
    loss = criterion.get_criterion("CB", 3, class_counts=counts, cb_loss="softmax_bce")
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)  # the class weights are float32
    assert criterion.get_criterion("CB", 3, class_counts=counts)(logits, targets).item() != pytest.approx(expected)
    logits = torch.tensor([[1e4, 0.0, -1e4]], requires_grad=True)  # a certain wrong class: log(1 - p) floored
    value = loss(logits, torch.tensor([2]))
    value.backward()
    assert math.isfinite(value.item()) and torch.isfinite(logits.grad).all()
