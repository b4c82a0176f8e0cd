"""Training objectives for imbalanced image classification, and the table of them.

Notation: logits ``z`` (N x K), targets ``y`` (N), ``p = softmax(z)``, ``g`` the
true class of a sample, ``n_j`` the training images of class ``j``.  Every loss
returns the batch mean, computes in float32 (or float64) even for half-precision
logits and works from ``log_softmax`` so it stays finite for logits as large as
|z| = 1e4.  Each loss class gives its formula and paper.

``OBJECTIVES`` (at the end) is the one place that says what an objective is: its
builder, the options it reads, whether it needs the class counts, its default
classifier head, the factor its probabilities use, whether it takes a second
(complement) step, and its formula and paper for the README.  ``1_train.py``,
``2_test.py``, ``predict.py`` and ``compare.py`` read it; ``python criterion.py``
prints it as the README's table.  A new loss is a ``Loss`` subclass plus one entry.
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


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


DRW_BETA = 0.9999  # deferred re-weighting's beta in Cao et al.'s code (and imbalanced-DL's Remix-DRW)


def effective_number_weights(class_counts, beta):
    """Class-balanced weights ``(1 - beta) / (1 - beta^n_j)``, normalised to sum to K."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, counts))
    return (weights / weights.sum() * len(counts)).float()


class Loss(nn.Module):
    """Base of every loss: a subclass gives ``per_sample(logits, targets)``; optional per-class weights ``w``
    and the batch reduction come from here.

    Two reductions of weighted losses are in use and both are kept as published:
    the plain mean ``mean_i w_gi l_i`` (Cui et al.'s class-balanced loss, with
    weights that sum to K, so the average weight over classes is 1), and the
    weighted mean ``sum_i w_gi l_i / sum_i w_gi`` (``weighted_mean=True``; what
    ``F.cross_entropy(weight=...)`` computes, and Cao et al.'s re-weighting baseline
    and LDAM-DRW use), whose step size does not shrink when a batch holds mostly
    down-weighted head classes (``--cb_reduction`` chooses for CB and ``--class_balanced``).

    Deferred re-weighting (Cao et al., 2019): with ``drw_epoch`` the class weights ``drw_weights`` switch on from
    that epoch (``set_epoch``, called by the training loop at the start of each epoch).
    """

    def __init__(self, class_weights=None, weighted_mean=False, drw_epoch=None, drw_weights=None):
        super().__init__()
        self.register_buffer("class_weights", None if class_weights is None else torch.as_tensor(class_weights).float())
        self.weighted_mean = weighted_mean
        self.drw_epoch = drw_epoch
        self.register_buffer("drw_weights", None if drw_weights is None else torch.as_tensor(drw_weights).float())

    def set_epoch(self, epoch):
        if self.drw_epoch is not None:
            self.class_weights = self.drw_weights if epoch >= self.drw_epoch else None

    def per_sample(self, logits, targets):
        raise NotImplementedError

    def forward(self, logits, targets, sample_weights=None):
        """The batch loss; ``sample_weights`` (one per image, e.g. a mixed batch's label shares) multiply the
        per-image losses before the reduction, so ``L(y_a, lam) + L(y_b, 1 - lam)`` is the mixed loss
        ``lam * L(y_a) + (1 - lam) * L(y_b)`` for any scalar ``lam``."""
        loss = self.per_sample(_as_float(logits), targets)
        if sample_weights is not None:
            loss = loss * sample_weights.to(loss.dtype)
        if self.class_weights is None:
            return loss.mean()
        weights = self.class_weights.to(loss.dtype)[targets]
        if self.weighted_mean:
            return (loss * weights).sum() / weights.sum()
        return (loss * weights).mean()


def _cross_entropy(logits, targets, label_smoothing=0.0):
    """Per-sample cross entropy with optional label smoothing over all K classes."""
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)


class CrossEntropy(Loss):
    """ERM: ``-log p_g`` (with optional label smoothing, class weights or deferred re-weighting)."""

    def __init__(self, label_smoothing=0.0, class_weights=None, weighted_mean=False, **deferred):
        super().__init__(class_weights, weighted_mean, **deferred)
        self.label_smoothing = label_smoothing

    def per_sample(self, logits, targets):
        return _cross_entropy(logits, targets, self.label_smoothing)


class SoftmaxBinaryCrossEntropy(Loss):
    """The class-balanced loss as Alshammari et al.'s weight balancing trains its second stage: ``CB_loss(...,
    "softmax", beta, gamma)`` of the PyTorch port of Cui et al. they use (``utils/class_balanced_loss.py``), which
    is *binary* cross entropy on the softmax probabilities against one-hot labels, averaged over the K classes:
    ``l_i = -(1/K) [log p_ig + sum_{j != g} log(1 - p_ij)]``, each log floored at -100 as torch's BCE floors it
    (its gamma is not used for "softmax").  With the class weights ``w_g`` and the plain mean this is their
    ``F.binary_cross_entropy(p, onehot, weight=w_g)``, the mean over the B x K entries."""

    FLOOR = -100.0

    def per_sample(self, logits, targets):
        log_p = torch.log_softmax(logits, dim=1)
        # log(1 - p) from log p without cancellation; the floor keeps value and gradient finite at p = 1.
        log_rest = torch.log((-torch.expm1(log_p)).clamp_min(math.exp(self.FLOOR)))
        target = torch.zeros_like(log_p, dtype=torch.bool).scatter_(1, targets[:, None], True)
        return -torch.where(target, log_p.clamp_min(self.FLOOR), log_rest).mean(dim=1)


class ComplementCrossEntropy(Loss):
    """CCE: ``CE - gamma / (K - 1) * C``; gamma > 0 flattens the incorrect classes."""

    def __init__(self, num_classes, gamma=0.5, label_smoothing=0.0, class_weights=None, weighted_mean=False):
        super().__init__(class_weights, weighted_mean)
        self.num_classes, self.gamma, self.label_smoothing = num_classes, gamma, label_smoothing

    def per_sample(self, logits, targets):
        ce, complement = cross_and_complement_entropy(logits, targets)
        if self.label_smoothing:
            ce = _cross_entropy(logits, targets, self.label_smoothing)
        return ce - self.gamma / (self.num_classes - 1) * complement


class ComplementEntropy(Loss):
    """COT's complement step: minimise ``-C / (K - 1)``, i.e. maximise the complement entropy."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def per_sample(self, logits, targets):
        return -complement_entropy(logits, targets) / (self.num_classes - 1)


class FocalLoss(Loss):
    """FL: ``-(1 - p_g)^gamma log p_g`` with optional per-class weights (alpha)."""

    def __init__(self, gamma=2.0, class_weights=None, weighted_mean=False):
        super().__init__(class_weights, weighted_mean)
        self.gamma = gamma

    def per_sample(self, logits, targets):
        log_pg = torch.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        one_minus_pg = -torch.expm1(log_pg)  # 1 - p_g without cancellation
        # At p_g = 1 the factor's derivative is infinite for gamma < 1 (times log p_g = 0: NaN); from the smallest
        # positive number up it is finite, and the loss unchanged.
        return -one_minus_pg.clamp_min(torch.finfo(one_minus_pg.dtype).tiny).pow(self.gamma) * log_pg


class LogitAdjustedLoss(Loss):
    """Cross entropy on ``z + tau * log(prior)``: BS (tau 1, counts) and LA (tau, frequencies)."""

    def __init__(self, class_counts, tau=1.0, normalise=True):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        prior = counts / counts.sum() if normalise else counts
        self.register_buffer("adjustment", (tau * prior.log()).float())

    def per_sample(self, logits, targets):
        return _cross_entropy(logits + self.adjustment.to(logits.dtype), targets)


class LDAMLoss(Loss):
    """LDAM: ``CE(s * (z - m_g e_g))``, ``m_j = max_margin * (n_min / n_j)^(1/4)``.

    With ``drw_epoch`` set, class-balanced weights (beta 0.9999) switch on from that
    epoch (deferred re-weighting, reduced by the weighted mean as in Cao et al.'s
    code); ``set_epoch`` is called by the training loop.

    ``s = 30`` is meant for cosine logits in [-1, 1] (``--normed_head``, on by
    default for LDAM): on the unbounded logits of a plain linear layer it scales the
    classifier's gradients by 30 and training diverges at the usual lr of 0.1.
    """

    def __init__(self, class_counts, max_margin=0.5, scale=30.0, drw_epoch=None, drw_beta=DRW_BETA):
        super().__init__(weighted_mean=True, drw_epoch=drw_epoch,
                         drw_weights=effective_number_weights(class_counts, drw_beta))
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        margins = counts.pow(-0.25)
        self.register_buffer("margins", (margins * (max_margin / margins.max())).float())
        self.scale = scale

    def per_sample(self, logits, targets):
        margin = self.margins.to(logits.dtype)[targets, None]
        return _cross_entropy(self.scale * logits.scatter_add(1, targets[:, None], -margin), targets)




def label_aware_epsilons(class_counts, head=0.3, tail=0.0):
    """MiSLAS's per-class smoothing (Zhong et al., 2021, their ``methods.py``, shape "concave"): ``eps_k = tail +
    (head - tail) * sin(pi/2 * (n_k - n_min) / (n_max - n_min))``: the largest class gets ``head``, the smallest
    ``tail`` (all ``head`` when the classes are equal)."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    spread = counts.max() - counts.min()
    share = (counts - counts.min()) / spread if spread > 0 else torch.ones_like(counts)
    return (tail + (head - tail) * torch.sin(math.pi / 2 * share)).float()


class LabelAwareSmoothing(Loss):
    """LAS (Zhong et al., CVPR 2021, MiSLAS's second stage): ``(1 - eps_g) CE + eps_g * mean_k(-log p_k)``, cross
    entropy against a target smoothed by its class's ``eps`` (``label_aware_epsilons``) over all K classes."""

    def __init__(self, class_counts, head=0.3, tail=0.0):
        super().__init__()
        self.register_buffer("epsilons", label_aware_epsilons(class_counts, head, tail))

    def per_sample(self, logits, targets):
        log_p = torch.log_softmax(logits, dim=1)
        eps = self.epsilons.to(log_p.dtype)[targets]
        return -(1 - eps) * log_p.gather(1, targets[:, None]).squeeze(1) - eps * log_p.mean(dim=1)


def soft_cross_entropy(logits, targets):
    """``-mean_i sum_k t_ik log softmax(z_i)_k`` for soft targets ``t`` (which need not sum to 1: GLMC's re-weighted
    targets do not)."""
    return -(targets * torch.log_softmax(_as_float(logits), dim=1)).sum(dim=1).mean()


def balanced_contrastive_loss(prototypes, features, labels, temperature=0.07):
    """BCL's balanced supervised contrastive loss (Zhu et al., CVPR 2022, their ``loss/contrastive.py``).

    ``features`` (B x V x d, L2-normalised: V views of each image) are the anchors; the contrast set is every view
    of every image plus one prototype per class (``prototypes``, C x d, normalised: class-complement, every class
    in every batch).  For anchor i with label y, ``s_ij = z_i . z_j / T``; the denominator averages ``exp(s_ij)``
    within each class and sums over classes (class-averaging; i itself left out of its own class); the positives are
    the other members of class y (the other views, the other images of y, its prototype), and the loss is minus
    the mean over them of ``s_ij - log(denominator)``, averaged over the anchors."""
    batch, views, _ = features.shape
    classes = len(prototypes)
    anchors = features.transpose(0, 1).reshape(batch * views, -1)
    contrast = torch.cat([anchors, prototypes])
    anchor_labels = labels.repeat(views)
    contrast_labels = torch.cat([anchor_labels, torch.arange(classes, device=labels.device)])
    similarity = anchors @ contrast.T / temperature
    similarity = similarity - similarity.max(dim=1, keepdim=True).values.detach()  # stability only
    own = torch.zeros_like(similarity, dtype=torch.bool)
    own[torch.arange(len(anchors)), torch.arange(len(anchors))] = True
    same = anchor_labels[:, None] == contrast_labels[None, :]
    positives = same & ~own
    class_sizes = torch.bincount(contrast_labels, minlength=classes).to(similarity.dtype)
    # each j is averaged within its class; for the anchor's own class, the anchor is not counted
    sizes = class_sizes[contrast_labels][None, :].expand_as(similarity) - same.to(similarity.dtype)
    terms = torch.exp(similarity).masked_fill(own, 0.0) / sizes
    log_probability = similarity - torch.log(terms.sum(dim=1, keepdim=True))
    mean_positive = (log_probability * positives).sum(dim=1) / positives.sum(dim=1)
    return -mean_positive.mean()


def negative_cosine(predicted, target):
    """SimSiam's ``-cos(p, stopgrad(z))``, the batch mean: GLMC's mixed-consistency term uses it both ways."""
    return -F.cosine_similarity(predicted, target.detach(), dim=1).mean()


def default_drw_epoch(stage_lengths):
    """DRW starts with the last-but-one learning-rate stage (0 with a single stage)."""
    if len(stage_lengths) < 2:
        return 0
    return int(sum(stage_lengths[:-2]))


# ---------------------------------------------------------------- the table of objectives

@dataclass(frozen=True)
class Option:
    """A setting some objectives read; ``1_train.py`` makes it the flag ``--<name>``.

    ``only_with``: the option matters only while this flag is on, for objectives that read that flag too
    (``cb_beta`` for ERM only with ``--class_balanced``; CB always uses it).
    """
    default: object
    type: type
    help: str
    only_with: Optional[str] = None
    choices: Optional[tuple] = None
    low: Optional[float] = None  # the range a number must lie in: [low, high], or [low, high) with high_open
    high: Optional[float] = None
    high_open: bool = False


OPTIONS = {
    "ccegamma": Option(0.5, float, "gamma of CCE: CE - gamma/(K-1) * complement entropy (the paper's gamma is "
                                   "-ccegamma)"),
    "focal_gamma": Option(2.0, float, "gamma of FL", low=0),
    "label_smoothing": Option(0.0, float, "label smoothing of the cross-entropy term", low=0, high=1),
    "class_balanced": Option(False, bool, "effective-number class weights (CB is ERM with them)"),
    "cb_beta": Option(0.9999, float, "beta of the effective number", only_with="class_balanced", low=0, high=1,
                      high_open=True),
    "cb_reduction": Option("plain", str, "batch reduction of class-weighted losses: plain = mean_i w l_i (Cui et al.), "
                           "weighted = sum_i w l_i / sum_i w (Cao et al.'s re-weighting)", only_with="class_balanced",
                           choices=("plain", "weighted")),
    "cb_loss": Option("ce", str, "the loss CB weights: ce (softmax cross entropy) or softmax_bce (binary cross "
                      "entropy on the softmax, the CB_loss 'softmax' of weight balancing's second stage)",
                      choices=("ce", "softmax_bce")),
    "la_tau": Option(1.0, float, "tau of LA", low=0),
    "las_head": Option(0.3, float, "LAS: smoothing of the largest class (MiSLAS: 0.3 on CIFAR-10-LT, 0.4 on "
                                   "CIFAR-100-LT)", low=0, high=1),
    "las_tail": Option(0.0, float, "LAS: smoothing of the smallest class (0.0; 0.1 on CIFAR-100-LT)", low=0, high=1),
    "ldam_max_margin": Option(0.5, float, "largest margin of LDAM", low=0),
    "ldam_scale": Option(30.0, float, "s of LDAM: its factor on the cosine logits", low=0),
    "drw": Option(False, bool, "deferred re-weighting: class-balanced weights (beta 0.9999) from --drw_epoch on"),
    "drw_epoch": Option(None, int, "DRW start (default: the last-but-one lr stage; with --schedule cosine 80 % "
                                   "of the epochs)", only_with="drw", low=0),
    "drw_reduction": Option("weighted", str, "ERM's DRW: weighted = sum_i w l_i / sum_i w (Cao et al.'s CE-DRW), "
                            "plain = mean_i w l_i (imbalanced-DL's Remix-DRW)", only_with="drw",
                            choices=("weighted", "plain")),
}


@dataclass(frozen=True)
class Objective:
    """One objective: everything a script needs to know about it.

    ``build(num_classes, class_counts, **options)`` returns the loss module, called with exactly the
    ``options`` listed (names of ``OPTIONS``).  ``logit_scale`` names the option holding the factor the loss
    applies to the network's outputs before its softmax (LDAM's ``s``): probabilities are the softmax of the
    outputs times it, and a normalised head then gives raw cosines.  ``complement_step``: a second optimiser
    step per batch on ``ComplementEntropy`` (COT).  ``shown``: options always named in a table's label.
    """
    name: str
    build: Callable[..., nn.Module]
    formula: str
    paper: str
    options: tuple = ()
    needs_class_counts: bool = False
    normed_head: bool = False
    logit_scale: Optional[str] = None
    complement_step: bool = False
    mixes: bool = True
    shown: tuple = ()

    def reads(self, settings):
        """The options this objective reads under ``settings`` (a run's arguments, as a dict)."""
        def gated_off(name):
            gate = OPTIONS[name].only_with
            return gate in self.options and not settings.get(gate, OPTIONS[gate].default)
        return tuple(name for name in self.options if not gated_off(name))

    def probability_scale(self, settings):
        """The factor on the network's outputs whose softmax is the distribution the loss trained."""
        if self.logit_scale is None:
            return 1.0
        return float(settings.get(self.logit_scale, OPTIONS[self.logit_scale].default))


def _weighting(class_counts, class_balanced, cb_beta, cb_reduction):
    """``class_weights`` and ``weighted_mean`` of a loss under the class-balanced options."""
    if not class_balanced:
        return {}
    if class_counts is None:
        raise ValueError("--class_balanced needs the training class counts")
    return {"class_weights": effective_number_weights(class_counts, cb_beta), "weighted_mean": cb_reduction == "weighted"}


def _erm(num_classes, class_counts, label_smoothing, class_balanced, cb_beta, cb_reduction, drw, drw_epoch,
         drw_reduction):
    if not drw:
        return CrossEntropy(label_smoothing, **_weighting(class_counts, class_balanced, cb_beta, cb_reduction))
    if class_balanced:
        raise ValueError("--drw and --class_balanced both weight the classes; choose one")
    if class_counts is None or drw_epoch is None:
        raise ValueError("--drw needs the training class counts and --drw_epoch")
    return CrossEntropy(label_smoothing, weighted_mean=drw_reduction == "weighted", drw_epoch=drw_epoch,
                        drw_weights=effective_number_weights(class_counts, DRW_BETA))


def _cce(num_classes, class_counts, ccegamma, label_smoothing, class_balanced, cb_beta, cb_reduction):
    return ComplementCrossEntropy(num_classes, ccegamma, label_smoothing,
                                  **_weighting(class_counts, class_balanced, cb_beta, cb_reduction))


def _cot(num_classes, class_counts, label_smoothing):
    return CrossEntropy(label_smoothing)


def _focal(num_classes, class_counts, focal_gamma, class_balanced, cb_beta, cb_reduction):
    return FocalLoss(focal_gamma, **_weighting(class_counts, class_balanced, cb_beta, cb_reduction))


def _class_balanced(num_classes, class_counts, label_smoothing, cb_beta, cb_reduction, cb_loss):
    weighting = _weighting(class_counts, True, cb_beta, cb_reduction)
    if cb_loss == "softmax_bce":
        if label_smoothing:
            raise ValueError("--label_smoothing is for --cb_loss ce; softmax_bce has no smoothing")
        return SoftmaxBinaryCrossEntropy(**weighting)
    return CrossEntropy(label_smoothing, **weighting)


def _ldam(num_classes, class_counts, ldam_max_margin, ldam_scale, drw, drw_epoch):
    if drw and drw_epoch is None:
        raise ValueError("--drw needs --drw_epoch")
    return LDAMLoss(class_counts, ldam_max_margin, ldam_scale, drw_epoch if drw else None)


def _balanced_softmax(num_classes, class_counts):
    return LogitAdjustedLoss(class_counts, tau=1.0, normalise=False)


def _logit_adjusted(num_classes, class_counts, la_tau):
    return LogitAdjustedLoss(class_counts, tau=la_tau)


def _label_aware(num_classes, class_counts, las_head, las_tail):
    return LabelAwareSmoothing(class_counts, las_head, las_tail)


WEIGHTS = ("class_balanced", "cb_beta", "cb_reduction")

OBJECTIVES = {entry.name: entry for entry in (
    Objective("ERM", _erm, "`CE = -log p_g`; `--drw`: CB weights from `--drw_epoch`", "cross entropy",
              ("label_smoothing", *WEIGHTS, "drw", "drw_epoch", "drw_reduction"), shown=("drw",)),
    Objective("CCE", _cce, "`CE - gamma / (K - 1) * C`",
              "Kim, Lee & Jeon, *Imbalanced image classification with complement cross entropy*, 2020",
              ("ccegamma", "label_smoothing", *WEIGHTS), shown=("ccegamma",)),
    Objective("COT", _cot, "per batch: a step on `CE`, then a step on `-C / (K - 1)`",
              "Chen et al., *Complement objective training*, ICLR 2019", ("label_smoothing",), complement_step=True,
              mixes=False),
    Objective("FL", _focal, "`-(1 - p_g)^gamma log p_g`",
              "Lin et al., *Focal loss for dense object detection*, ICCV 2017", ("focal_gamma", *WEIGHTS)),
    Objective("CB", _class_balanced, "`w_g * CE`, `w_j = (1 - beta) / (1 - beta^n_j)` normalised to sum to K",
              "Cui et al., *Class-balanced loss based on effective number of samples*, CVPR 2019",
              ("label_smoothing", "cb_beta", "cb_reduction", "cb_loss"), needs_class_counts=True),
    Objective("LDAM", _ldam, "`CE(s * (z - m_g e_g))` on cosine logits `z`, `m_j ∝ n_j^(-1/4)`, largest "
              "`--ldam_max_margin`; `--drw`: CB weights from `--drw_epoch`",
              "Cao et al., *Learning imbalanced datasets with label-distribution-aware margin loss*, NeurIPS 2019",
              ("ldam_max_margin", "ldam_scale", "drw", "drw_epoch"), needs_class_counts=True, normed_head=True,
              logit_scale="ldam_scale", shown=("drw",)),
    Objective("BS", _balanced_softmax, "`CE(z + log n)`",
              "Ren et al., *Balanced meta-softmax for long-tailed visual recognition*, NeurIPS 2020",
              needs_class_counts=True),
    Objective("LA", _logit_adjusted, "`CE(z + tau * log(n / sum n))`",
              "Menon et al., *Long-tail learning via logit adjustment*, ICLR 2021", ("la_tau",),
              needs_class_counts=True),
    Objective("LAS", _label_aware, "`(1 - e_g) CE + e_g * mean_k(-log p_k)`, `e_j` from `--las_tail` (smallest class) "
              "to `--las_head` (largest), concave in `n_j`",
              "Zhong et al., *Improving calibration for long-tailed recognition* (MiSLAS), CVPR 2021",
              ("las_head", "las_tail"), needs_class_counts=True),
)}


def get_objective(name):
    """The table entry of ``name``, or a ``ValueError`` naming the valid ones."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def get_criterion(objective_name, num_classes, class_counts=None, **options):
    """The loss module of an objective; for COT this is the cross-entropy step.

    ``options`` are values of ``OPTIONS`` (defaults for the rest); the objective gets those it reads.
    """
    entry = get_objective(objective_name)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; the options are {', '.join(OPTIONS)}")
    if num_classes < 2:
        raise ValueError("classification needs at least 2 classes")
    if entry.needs_class_counts and class_counts is None:
        raise ValueError(f"objective {objective_name} needs the training class counts")
    values = {name: options.get(name, OPTIONS[name].default) for name in entry.options}
    return entry.build(num_classes, class_counts, **values)


def objectives_table():
    """The README's table of objectives, in markdown."""
    def flag(name):
        option = OPTIONS[name]
        if option.type is bool or option.default is None:
            return f"`--{name}`"
        if isinstance(option.default, str):
            return f"`--{name} {option.default}`"
        return f"`--{name} {option.default:g}`"

    lines = ["| objective | loss | options (default) | head | reference |", "|---|---|---|---|---|"]
    for entry in OBJECTIVES.values():
        head = "cosine (normalised)" if entry.normed_head else "linear"
        options = ", ".join(flag(name) for name in entry.options) or "-"
        lines.append(f"| `{entry.name}` | {entry.formula} | {options} | {head} | {entry.paper} |")
    return "\n".join(lines) + "\n"


__all__ = ["OBJECTIVES", "OPTIONS", "Objective", "Option", "Loss", "get_objective", "get_criterion", "ComplementEntropy",
           "complement_entropy", "effective_number_weights", "default_drw_epoch", "objectives_table",
           "label_aware_epsilons", "soft_cross_entropy", "balanced_contrastive_loss", "negative_cosine"]


if __name__ == "__main__":
    print(objectives_table(), end="")
