"""The optimiser and its per-iteration learning-rate schedule: linear warm-up, then stages or a cosine decay."""
import bisect
import functools
import math

import numpy as np
import torch

WARMUP_EPOCHS = 5
SCHEDULES = ("step", "cosine", "cosine_epoch", "cosine_each_epoch")


def build_optimisation(args, model, iters_per_epoch, amp_dtype=None, groups=None):
    """The optimiser (SGD or AdamW) over the trainable parameters (or the parameter ``groups``), its ``LambdaLR``
    schedule and the gradient scaler (active for float16 autocast only)."""
    optimizer, scheduler = build_optimiser(args, model, iters_per_epoch, groups)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    return optimizer, scheduler, scaler


def build_optimiser(args, model, iters_per_epoch, groups=None):
    """An optimiser over the trainable parameters (or ``groups``: dicts of params and an ``lr`` factor) and its
    ``LambdaLR`` schedule.  COT's complement step has a second one of its own, as Chen et al.'s code does (its own
    momentum, the same lr, schedule and weight decay)."""
    parameters = [p for p in model.parameters() if p.requires_grad] if groups is None else [
        {"params": group["params"], "lr": args.lr * group.get("lr_factor", 1.0)} for group in groups]
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.SGD(parameters, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                    nesterov=bool(getattr(args, "nesterov", False)))
    warmup_epochs = WARMUP_EPOCHS if args.warmup else 0
    if args.schedule == "cosine":
        factor = functools.partial(cosine_factor, iters_per_epoch=iters_per_epoch, epochs=args.epochs,
                                   warmup_epochs=warmup_epochs)
    elif args.schedule in ("cosine_epoch", "cosine_each_epoch"):
        factor = functools.partial(cosine_epoch_factor, iters_per_epoch=iters_per_epoch, epochs=args.epochs,
                                   warmup_epochs=warmup_epochs, start=args.schedule == "cosine_epoch")
    else:
        factor = functools.partial(lr_factor, iters_per_epoch=iters_per_epoch, stage_lengths=args.lrstep,
                                   decay=args.lrdecay, warmup_epochs=warmup_epochs)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_factor(iteration, iters_per_epoch, stage_lengths, decay=0.2, warmup_epochs=0):
    """Multiplier of the base lr at ``iteration`` (0-based, counted over the whole run).

    Stage k of ``stage_lengths`` (in epochs) trains at ``decay**k``; epochs past the
    last boundary stay in the last stage.  With warm-up the factor also rises
    linearly per iteration, ``(t + 1) / (warmup_epochs * iters_per_epoch)``.
    """
    epoch = iteration // iters_per_epoch
    boundaries = np.cumsum(stage_lengths[:-1]).tolist()
    factor = decay ** bisect.bisect_right(boundaries, epoch)
    warmup_iters = warmup_epochs * iters_per_epoch
    if iteration < warmup_iters:
        factor *= (iteration + 1) / warmup_iters
    return factor


def cosine_factor(iteration, iters_per_epoch, epochs, warmup_epochs=0):
    """Multiplier of the base lr for ``--schedule cosine``: the linear warm-up of ``lr_factor``, then
    ``(1 + cos(pi * t / T)) / 2`` per iteration, ``t`` counted from the end of the warm-up, reaching 0 at the end."""
    warmup_iters = warmup_epochs * iters_per_epoch
    if iteration < warmup_iters:
        return (iteration + 1) / warmup_iters
    decay_iters = max(epochs * iters_per_epoch - warmup_iters, 1)
    progress = min((iteration - warmup_iters) / decay_iters, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_epoch_factor(iteration, iters_per_epoch, epochs, warmup_epochs=0, start=True):
    """Multiplier of the base lr for ``--schedule cosine_epoch`` and ``cosine_each_epoch``: after the warm-up, one
    value per epoch, as ``CosineAnnealingLR(T_max=E)`` gives it when stepped at the *start* of every epoch (Kang et
    al.'s and Alshammari et al.'s second stages: epoch ``e`` of the ``E`` after the warm-up trains at ``(1 + cos(pi
    (e + 1) / E)) / 2``, the last at 0; ``start``) or after every epoch (MiSLAS's second stage, GLMC: ``(1 + cos(pi
    e / E)) / 2``, the first at the full lr)."""
    warmup_iters = warmup_epochs * iters_per_epoch
    if iteration < warmup_iters:
        return (iteration + 1) / warmup_iters
    decay_epochs = max(epochs - warmup_epochs, 1)
    epoch = min((iteration - warmup_iters) // iters_per_epoch, decay_epochs - 1)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch + int(start)) / decay_epochs))


def sam_step(parameters, compute_loss, optimizer, scaler, rho, model=None, keep_statistics=False):
    """One sharpness-aware step (Foret et al., 2021; for long tails, Rangwani et al., 2022): the gradient at
    ``w + rho * g / ||g||``, ``g`` the gradient at ``w``, applied at ``w``.  ``compute_loss()`` evaluates the
    batch's loss at the current weights (twice: at ``w`` and at the perturbed weights).  Returns the loss at
    ``w``.  Under DDP both backward passes average the gradients over processes, so every process perturbs alike.
    Both passes update the batch-norm running statistics, as Rangwani et al.'s long-tail SAM code does; with
    ``keep_statistics`` the batch-norm layers of ``model`` keep them through the second pass (momentum 0), as
    davda54's SAM recommends: statistics of the perturbed weights are not the model's.
    """
    loss = compute_loss()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    with torch.no_grad():
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0
        params = [p for p in parameters if p.grad is not None]
        gradients = [p.grad / scale for p in params]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradients]))
        factor = torch.where(torch.isfinite(norm), rho / (norm + 1e-12), torch.zeros_like(norm))
        # An fp16 overflow (the scaler then skips the step) perturbs nothing rather than everything by NaN.
        steps = [torch.nan_to_num(g * factor, nan=0.0, posinf=0.0, neginf=0.0) for g in gradients]
        for p, step in zip(params, steps):
            p.add_(step)
    optimizer.zero_grad(set_to_none=True)
    norms = [m for m in (model.modules() if model is not None and keep_statistics else ())
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        scaler.scale(compute_loss()).backward()
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    with torch.no_grad():
        for p, step in zip(params, steps):
            p.sub_(step)
    scaler.step(optimizer)
    scaler.update()
    return loss
