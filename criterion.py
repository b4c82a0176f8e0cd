"""Training objectives for imbalanced image classification.

Notation: logits ``z`` (N x K), targets ``y`` (N), ``p = softmax(z)``, ``g`` the
true class of a sample.  Every loss returns the batch mean, computes in float32
(or float64) even for half-precision logits and works from ``log_softmax`` so it
stays finite for logits as large as |z| = 1e4.

Objectives (``--objective``):

* ``ERM``  cross entropy, ``CE = -mean_i log p_ig``.
* ``CCE``  complement cross entropy (Kim, Lee & Jeon, 2020),
  ``CE - gamma / (K - 1) * mean_i C_i``, where
  ``C_i = -sum_{j != g} q_ij log q_ij`` and ``q_ij = p_ij / (1 - p_ig)``.
* ``COT``  complement objective training (Chen et al., 2019): a CE step, then a
  step on ``ComplementEntropy``, ``-mean_i C_i / (K - 1)``.
* ``FL``   focal loss (Lin et al., 2017), ``-mean_i (1 - p_ig)^gamma_f log p_ig``.
* ``CB``   class-balanced cross entropy (Cui et al., 2019): sample weights
  ``w_g = (1 - beta) / (1 - beta^n_g)``, normalised to sum to K, plain batch mean.
* ``LDAM`` label-distribution-aware margin (Cao et al., 2019),
  ``CE(s * (z - m_g e_g))`` with ``m_j`` proportional to ``n_j^(-1/4)``, largest 0.5,
  on cosine logits ``z`` of a normalised classifier; optional deferred
  re-weighting (DRW) from a given epoch, reduced by the weighted mean.
* ``BS``   balanced softmax (Ren et al., 2020), ``CE(z + log n)``.
* ``LA``   logit-adjusted cross entropy (Menon et al., 2021), ``CE(z + tau log pi)``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

OBJECTIVES = ("ERM", "CCE", "COT", "FL", "CB", "LDAM", "BS", "LA")
NEEDS_CLASS_COUNTS = ("CB", "LDAM", "BS", "LA")


def _as_float(logits):
    """Upcast half-precision logits; keep float32/float64 as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


class _CrossAndComplementEntropy(torch.autograd.Function):
    """Per-sample cross entropy and complement entropy from one softmax over the incorrect classes.

    With ``m`` the largest incorrect logit, ``s = z - m``, ``q = softmax(s)`` over
    ``j != g`` (``q_g = 0``) and ``L = log sum_{j != g} exp(s_j)``:

    * ``log(1 - p_g) = m + L - lse(z)`` with ``lse(z) = logaddexp(z_g, m + L)``, so
      ``CE = lse(z) - z_g`` and ``r = 1 - p_g`` come without dividing probabilities;
    * ``C = L - sum_j q_j s_j``, a sum of non-negative terms (no cancellation);
    * ``dCE/dz_j = r q_j`` (``j != g``), ``-r`` (``j = g``);
      ``dC/dz_j = -q_j (s_j - L + C)`` (``j != g``), ``0`` (``j = g``).

    One softmax and no exp or log over the whole logits, and a hand-written backward.
    """

    @staticmethod
    def forward(ctx, logits, targets):
        # Few fresh N x K buffers: on a CPU each new one costs about as much as a pass over it.
        column = targets[:, None]
        shifted = logits.scatter(1, column, float("-inf"))
        top, largest = shifted.max(dim=1, keepdim=True)  # m, the largest incorrect logit, and its class
        q = torch.softmax(shifted, dim=1)  # exactly 0 at the target
        torch.sub(logits, top, out=shifted)  # s = z - m, finite at the target too
        log_norm = -q.gather(1, largest).squeeze(1).log()  # L, since q at the largest is exp(0 - L)
        complement = log_norm - (q * shifted).sum(dim=1)  # q_g = 0 drops s_g
        target_logit = logits.gather(1, column).squeeze(1)
        log_rest = top.squeeze(1) + log_norm  # log sum_{j != g} exp(z_j)
        log_partition = torch.logaddexp(target_logit, log_rest)
        ctx.save_for_backward(shifted, column, q, log_norm, complement, torch.exp(log_rest - log_partition))
        return log_partition - target_logit, complement

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_cross_entropy, grad_complement):
        shifted, column, q, log_norm, complement, rest = ctx.saved_tensors
        grad = torch.add(shifted, (complement - log_norm)[:, None]).mul_(-grad_complement[:, None])
        grad.add_((rest * grad_cross_entropy)[:, None]).mul_(q)
        grad.scatter_add_(1, column, (-rest * grad_cross_entropy)[:, None])
        return grad, None


def cross_and_complement_entropy(logits, targets):
    """Per-sample ``(CE_i, C_i)``; see ``_CrossAndComplementEntropy``."""
    return _CrossAndComplementEntropy.apply(_as_float(logits), targets)


def complement_entropy(logits, targets):
    """Per-sample complement entropy ``C_i = -sum_{j != g} q_ij log q_ij``, ``q_ij = p_ij / (1 - p_ig)``."""
    return cross_and_complement_entropy(logits, targets)[1]


def effective_number_weights(class_counts, beta):
    """Class-balanced weights ``(1 - beta) / (1 - beta^n_j)``, normalised to sum to K."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, counts))
    return (weights / weights.sum() * len(counts)).float()


class _Loss(nn.Module):
    """Base: per-sample loss, optional per-class weights ``w``, batch reduction.

    Two reductions of weighted losses are in use and both are kept as published:
    the plain mean ``mean_i w_gi l_i`` (Cui et al.'s class-balanced loss, with
    weights that sum to K, so the average weight over classes is 1), and the
    weighted mean ``sum_i w_gi l_i / sum_i w_gi`` (``weighted_mean=True``; what
    ``F.cross_entropy(weight=...)`` computes and Cao et al.'s LDAM-DRW uses), whose
    step size does not shrink when a batch holds mostly down-weighted head classes.
    """

    weighted_mean = False

    def __init__(self, class_weights=None):
        super().__init__()
        self.register_buffer("class_weights", None if class_weights is None else torch.as_tensor(class_weights).float())

    def per_sample(self, logits, targets):
        raise NotImplementedError

    def forward(self, logits, targets):
        loss = self.per_sample(_as_float(logits), targets)
        if self.class_weights is None:
            return loss.mean()
        weights = self.class_weights.to(loss.dtype)[targets]
        if self.weighted_mean:
            return (loss * weights).sum() / weights.sum()
        return (loss * weights).mean()


def _cross_entropy(logits, targets, label_smoothing=0.0):
    """Per-sample cross entropy with optional label smoothing over all K classes."""
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)


class CrossEntropy(_Loss):
    """ERM: ``-log p_g`` (with optional label smoothing and class weights)."""

    def __init__(self, label_smoothing=0.0, class_weights=None):
        super().__init__(class_weights)
        self.label_smoothing = label_smoothing

    def per_sample(self, logits, targets):
        return _cross_entropy(logits, targets, self.label_smoothing)


class ComplementCrossEntropy(_Loss):
    """CCE: ``CE - gamma / (K - 1) * C``; gamma > 0 flattens the incorrect classes."""

    def __init__(self, num_classes, gamma=0.5, label_smoothing=0.0, class_weights=None):
        super().__init__(class_weights)
        self.num_classes, self.gamma, self.label_smoothing = num_classes, gamma, label_smoothing

    def per_sample(self, logits, targets):
        ce, complement = cross_and_complement_entropy(logits, targets)
        if self.label_smoothing:
            ce = _cross_entropy(logits, targets, self.label_smoothing)
        return ce - self.gamma / (self.num_classes - 1) * complement


class ComplementEntropy(_Loss):
    """COT's complement step: minimise ``-C / (K - 1)``, i.e. maximise the complement entropy."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def per_sample(self, logits, targets):
        return -complement_entropy(logits, targets) / (self.num_classes - 1)


class FocalLoss(_Loss):
    """FL: ``-(1 - p_g)^gamma log p_g`` with optional per-class weights (alpha)."""

    def __init__(self, gamma=2.0, class_weights=None):
        super().__init__(class_weights)
        self.gamma = gamma

    def per_sample(self, logits, targets):
        log_pg = torch.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        one_minus_pg = -torch.expm1(log_pg)  # 1 - p_g without cancellation
        return -one_minus_pg.pow(self.gamma) * log_pg


class LogitAdjustedLoss(_Loss):
    """Cross entropy on ``z + tau * log(prior)``: BS (tau 1, counts) and LA (tau, frequencies)."""

    def __init__(self, class_counts, tau=1.0, normalise=True):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        prior = counts / counts.sum() if normalise else counts
        self.register_buffer("adjustment", (tau * prior.log()).float())

    def per_sample(self, logits, targets):
        return _cross_entropy(logits + self.adjustment.to(logits.dtype), targets)


class LDAMLoss(_Loss):
    """LDAM: ``CE(s * (z - m_g e_g))``, ``m_j = max_margin * (n_min / n_j)^(1/4)``.

    With ``drw_epoch`` set, class-balanced weights (beta 0.9999) switch on from that
    epoch (deferred re-weighting, reduced by the weighted mean as in Cao et al.'s
    code); ``set_epoch`` is called by the training loop.

    ``s = 30`` is meant for cosine logits in [-1, 1] (``--normed_head``, on by
    default for LDAM): on the unbounded logits of a plain linear layer it scales the
    classifier's gradients by 30 and training diverges at the usual lr of 0.1.
    """

    weighted_mean = True

    def __init__(self, class_counts, max_margin=0.5, scale=30.0, drw_epoch=None, drw_beta=0.9999):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        margins = counts.pow(-0.25)
        self.register_buffer("margins", (margins * (max_margin / margins.max())).float())
        self.scale, self.drw_epoch = scale, drw_epoch
        self.drw_weights = effective_number_weights(class_counts, drw_beta)

    def set_epoch(self, epoch):
        use_weights = self.drw_epoch is not None and epoch >= self.drw_epoch
        self.class_weights = self.drw_weights.to(self.margins.device) if use_weights else None

    def per_sample(self, logits, targets):
        margin = self.margins.to(logits.dtype)[targets, None]
        return _cross_entropy(self.scale * logits.scatter_add(1, targets[:, None], -margin), targets)


def get_criterion(objective, num_classes, ccegamma=0.5, class_counts=None, *, focal_gamma=2.0,
                  label_smoothing=0.0, class_balanced=False, cb_beta=0.9999, la_tau=1.0,
                  ldam_max_margin=0.5, ldam_scale=30.0, drw_epoch=None):
    """The loss module for ``objective``; for COT this is the cross-entropy step.

    ``class_balanced`` applies effective-number weights (``cb_beta``) to ERM, CCE and FL.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if num_classes < 2:
        raise ValueError("classification needs at least 2 classes")
    if (objective in NEEDS_CLASS_COUNTS or class_balanced) and class_counts is None:
        raise ValueError(f"objective {objective} needs the training class counts")
    weights = effective_number_weights(class_counts, cb_beta) if class_balanced or objective == "CB" else None
    builders = {
        "ERM": lambda: CrossEntropy(label_smoothing, weights),
        "CB": lambda: CrossEntropy(label_smoothing, weights),
        "COT": lambda: CrossEntropy(label_smoothing),
        "CCE": lambda: ComplementCrossEntropy(num_classes, ccegamma, label_smoothing, weights),
        "FL": lambda: FocalLoss(focal_gamma, weights),
        "BS": lambda: LogitAdjustedLoss(class_counts, tau=1.0, normalise=False),
        "LA": lambda: LogitAdjustedLoss(class_counts, tau=la_tau),
        "LDAM": lambda: LDAMLoss(class_counts, ldam_max_margin, ldam_scale, drw_epoch),
    }
    return builders[objective]()


def logit_scale(objective, ldam_scale=30.0):
    """The factor the loss applies to the network's outputs before its softmax: LDAM's ``s``, else 1.

    Probabilities (calibration, predictions) are the softmax of the outputs times
    this factor, the distribution the loss trained; the argmax does not depend on it.
    """
    return float(ldam_scale) if objective == "LDAM" else 1.0


def default_drw_epoch(stage_lengths):
    """DRW starts with the last-but-one learning-rate stage (0 with a single stage)."""
    if len(stage_lengths) < 2:
        return 0
    return int(sum(stage_lengths[:-2]))


__all__ = ["OBJECTIVES", "get_criterion", "ComplementEntropy", "complement_entropy",
           "effective_number_weights", "default_drw_epoch", "logit_scale"]
