"""The learning-rate schedule: stages, warm-up and cosine decay."""
import math

import pytest

from optimisation import cosine_epoch_factor, cosine_factor, lr_factor


def test_lr_stages_of_the_original_schedule():
    lrs = [0.1 * lr_factor(epoch * 10, 10, [60, 60, 40, 40], 0.2) for epoch in range(230)]
    assert lrs[0] == lrs[59] == pytest.approx(0.1)
    assert lrs[60] == lrs[119] == pytest.approx(0.02)
    assert lrs[120] == lrs[159] == pytest.approx(0.004)
    assert lrs[160] == lrs[199] == lrs[229] == pytest.approx(0.0008)


def test_warmup_is_linear_per_iteration_over_five_epochs():
    iters = 4
    factors = [lr_factor(t, iters, [60, 60, 40, 40], 0.2, warmup_epochs=5) for t in range(30)]
    assert factors[:20] == pytest.approx([(t + 1) / 20 for t in range(20)])
    assert factors[19] == factors[20] == 1.0


def test_warmup_counts_as_stage_zero():
    # a stage shorter than the warm-up: the decay applies on top of the ramp
    assert lr_factor(2 * 10, 10, [2, 5], 0.5, warmup_epochs=5) == pytest.approx(0.5 * 21 / 50)


def test_cosine_schedule_formula():
    iters, epochs, warmup = 10, 8, 2
    factors = [cosine_factor(t, iters, epochs, warmup) for t in range(epochs * iters)]
    assert factors[0] == pytest.approx(1 / 20) and factors[19] == pytest.approx(1.0)
    assert factors[20] == pytest.approx(1.0)  # the decay starts at the end of the warm-up
    assert factors[50] == pytest.approx(0.5)  # half-way through the 60 decay iterations: cos(pi / 2)
    assert factors[35] == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 60)))
    assert cosine_factor(epochs * iters, iters, epochs, warmup) == pytest.approx(0.0, abs=1e-12)


def test_sam_step_on_a_quadratic_equals_the_closed_form():
    """loss(w) = w'Aw / 2: the step is w - lr * A (w + rho * Aw / ||Aw||)."""
    import torch
    from optimisation import sam_step
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    start = torch.tensor([1.0, -2.0], dtype=torch.float64)
    w = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    loss = sam_step([w], lambda: 0.5 * w @ a @ w, optimizer, scaler, rho=0.05)
    gradient = a @ start
    expected = start - 0.1 * a @ (start + 0.05 * gradient / gradient.norm())
    assert torch.allclose(w.detach(), expected, atol=1e-12)
    assert loss.item() == pytest.approx(0.5 * float(start @ a @ start))


def test_cosine_epoch_schedule_is_one_value_per_epoch_stepped_at_its_start():
    """Kang et al.'s and Alshammari et al.'s CosineAnnealingLR(T_max=E) stepped at the start of each epoch: epoch e
    trains at (1 + cos(pi (e + 1) / E)) / 2, so the last epoch at 0."""
    iters, epochs = 7, 10
    per_epoch = [[cosine_epoch_factor(e * iters + i, iters, epochs) for i in range(iters)] for e in range(epochs)]
    assert all(len(set(values)) == 1 for values in per_epoch)
    assert [values[0] for values in per_epoch] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * (e + 1) / epochs)) for e in range(epochs)])
    assert per_epoch[0][0] == pytest.approx(0.97553, abs=1e-5) and per_epoch[-1][0] == pytest.approx(0.0, abs=1e-12)
    warmed = [cosine_epoch_factor(t, 2, 6, warmup_epochs=2) for t in range(12)]
    assert warmed[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and warmed[4] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def _batch_norm_model():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def test_sam_updates_batch_norm_statistics_in_both_passes_by_default():
    """Rangwani et al.'s SAM code runs both forward passes in training mode: the running statistics move twice."""
    import torch
    from optimisation import sam_step
    model = _batch_norm_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    once = torch.nn.BatchNorm1d(3)
    once.load_state_dict(model[1].state_dict())
    with torch.no_grad():
        once.train()(model[0](x))
    sam_step(model.parameters(), lambda: model(x).pow(2).mean(), optimizer, torch.amp.GradScaler("cuda", enabled=False),
             rho=0.5, model=model)
    assert int(model[1].num_batches_tracked) == 2
    assert not torch.allclose(model[1].running_mean, once.running_mean)


def test_sam_keeps_batch_norm_statistics_through_its_second_pass():
    import torch
    from optimisation import sam_step
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    x = torch.randn(16, 4)
    expected = torch.nn.BatchNorm1d(3)
    expected.load_state_dict(model[1].state_dict())
    with torch.no_grad():
        expected.train()(model[0](x))  # what one pass at w does to the statistics
    sam_step(model.parameters(), lambda: model(x).pow(2).mean(), optimizer, scaler, rho=0.5, model=model,
             keep_statistics=True)
    assert torch.allclose(model[1].running_mean, expected.running_mean)
    assert torch.allclose(model[1].running_var, expected.running_var)
    assert model[1].momentum == 0.1
