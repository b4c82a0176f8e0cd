"""Statistics of predictions: imbalance metrics, bootstrap and seed-aware intervals, paired tests and the
verdict rule with its family-wise correction, a diverging seed, calibration, post-hoc logit adjustment, test priors.

Used by 1_train.py (validation metrics per epoch), 2_test.py (one evaluation) and compare.py (two runs or two
groups of seeds).
Accuracies are in percent.  Bootstrap resamples are stratified by class: each
replicate draws, within every class, as many images as the class has (with
replacement), so class sizes, and with them balanced accuracy's definition, stay
fixed.  All resampling is vectorised and seeded.
"""
import hashlib
import math

import numpy as np


RESAMPLES = 2000
TAUS = np.round(np.arange(0.0, 2.0001, 0.1), 1)  # --posthoc_tau auto searches these


# ---------------------------------------------------------------- metrics

def shot_groups(class_counts, many_shot=100, few_shot=20):
    """Class indices with > ``many_shot``, ``few_shot``..``many_shot`` and < ``few_shot`` train images."""
    counts = np.asarray(class_counts)
    return {
        "many": np.flatnonzero(counts > many_shot),
        "medium": np.flatnonzero((counts >= few_shot) & (counts <= many_shot)),
        "few": np.flatnonzero(counts < few_shot),
    }


def per_class_scores(targets, predictions, num_classes, weights=None):
    """Each class's recall, precision and F1 (fractions) and its support, the images' ``weights`` summed where given
    (else counted): recall = TP / (TP + FN), precision = TP / (TP + FP), F1 = 2 TP / (2 TP + FP + FN), each 0 where
    its denominator is (a class with no image, or one never predicted), as scikit-learn's ``zero_division=0``."""
    targets, predictions = np.asarray(targets), np.asarray(predictions)
    weights = np.ones(len(targets)) if weights is None else np.asarray(weights, dtype=np.float64)
    correct = targets == predictions
    true_positives = np.bincount(targets[correct], weights[correct], minlength=num_classes)
    support = np.bincount(targets, weights, minlength=num_classes)
    predicted = np.bincount(predictions, weights, minlength=num_classes)

    def ratio(numerator, denominator):
        return np.divide(numerator, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return {"recall": ratio(true_positives, support), "precision": ratio(true_positives, predicted),
            "f1": ratio(2 * true_positives, support + predicted), "support": support}


def macro_f1(targets, predictions, num_classes, weights=None):
    """Mean F1 (%) over the classes present in ``targets``."""
    present = np.unique(targets)
    return 100.0 * float(np.mean(per_class_scores(targets, predictions, num_classes, weights)["f1"][present]))


def classification_metrics(targets, predictions, num_classes, class_counts=None, many_shot=100, few_shot=20):
    """Top-1 (%), balanced accuracy (%), macro-F1 (%), per-class recall and shot-group accuracies."""
    targets, predictions = np.asarray(targets), np.asarray(predictions)
    present = np.unique(targets)
    per_class_recall = per_class_scores(targets, predictions, num_classes)["recall"]
    metrics = {
        "acc": 100.0 * float(np.mean(targets == predictions)),
        # Balanced accuracy over the classes that occur in this split.
        "balanced_acc": 100.0 * float(np.mean(per_class_recall[present])) if len(present) else math.nan,
        "macro_f1": macro_f1(targets, predictions, num_classes),
        "per_class_recall": per_class_recall,
    }
    if class_counts is not None:
        metrics.update(group_accuracies(per_class_recall, present, class_counts, many_shot, few_shot))
    return metrics


def group_accuracies(per_class_recall, present, class_counts, many_shot=100, few_shot=20):
    """``{many_acc, medium_acc, few_acc}`` (%): the plain mean of the recalls of each shot group's classes present in
    the split (nan for a group with none), as SADE's ``validation`` takes it (``acc[many_shot].mean()``); a test
    prior, which reweights images within a class, never changes it."""
    accuracies = {}
    for group, members in shot_groups(class_counts, many_shot, few_shot).items():
        members = np.intersect1d(members, present)
        accuracies[f"{group}_acc"] = 100.0 * float(np.mean(per_class_recall[members])) if len(members) else math.nan
    return accuracies


# ---------------------------------------------------------------- bootstrap intervals and paired tests


def class_indices(targets):
    """``[indices of class c]`` for the classes present, in class order."""
    targets = np.asarray(targets)
    return [np.flatnonzero(targets == c) for c in np.unique(targets)]


_LAST_RESAMPLES = {}  # the draws of the last test set asked for: every group and pair of a table shares them


def stratified_resamples(targets, resamples=RESAMPLES, seed=0):
    """Per class, a ``resamples x n_c`` array of indices into the split (one row per replicate).  The same
    targets, count and seed give the same draws; those of the last call are kept (read-only) for the next."""
    targets = np.asarray(targets)
    key = (hashlib.sha256(targets.tobytes()).hexdigest(), str(targets.dtype), resamples, seed)
    if key not in _LAST_RESAMPLES:
        rng = np.random.default_rng(seed)
        draws = [members[rng.integers(0, len(members), size=(resamples, len(members)))]
                 for members in class_indices(targets)]
        for indices in draws:
            indices.flags.writeable = False
        _LAST_RESAMPLES.clear()
        _LAST_RESAMPLES[key] = draws
    return _LAST_RESAMPLES[key]


def _accuracies(correct, draws):
    """Top-1 and balanced accuracy (%) of every replicate: arrays of length ``resamples``."""
    hits = [correct[indices].sum(axis=1) for indices in draws]  # per class: hits per replicate
    sizes = [indices.shape[1] for indices in draws]
    top1 = 100.0 * np.sum(hits, axis=0) / sum(sizes)
    balanced = 100.0 * np.mean([h / n for h, n in zip(hits, sizes)], axis=0)
    return top1, balanced


def percentile_interval(values, level=0.95):
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return [float(low), float(high)]


def _as_runs(predictions):
    """One prediction array, or a list of them (runs on the same images), as a list."""
    return [np.asarray(p) for p in (predictions if np.ndim(predictions) == 2 else [predictions])]


def bootstrap_intervals(targets, predictions, resamples=RESAMPLES, seed=0, level=0.95):
    """95 % stratified bootstrap intervals of top-1 and balanced accuracy over the test images only:
    ``{"acc": [lo, hi], "balanced_acc": [lo, hi]}``.

    ``predictions`` may also be a list of prediction arrays on the same images (runs
    with different seeds): the interval is then that of their mean, with the images
    resampled once per replicate for all runs and the runs held fixed.
    """
    targets = np.asarray(targets)
    per_image = np.mean([(targets == run).astype(np.float64) for run in _as_runs(predictions)], axis=0)  # linear
    top1, balanced = _accuracies(per_image, stratified_resamples(targets, resamples, seed))
    return {"acc": percentile_interval(top1, level), "balanced_acc": percentile_interval(balanced, level)}


def class_weights(targets, weighting="balanced"):
    """Per class present in ``targets`` (in class order), its weight in an accuracy: ``balanced`` 1/K (balanced
    accuracy), ``top1`` n_k/N (plain accuracy), or an array of K_present target-prior probabilities (the accuracy
    under that test prior)."""
    sizes = np.array([len(members) for members in class_indices(targets)], dtype=np.float64)
    if isinstance(weighting, str):
        return {"balanced": np.full(len(sizes), 1 / len(sizes)), "top1": sizes / sizes.sum()}[weighting]
    weights = np.asarray(weighting, dtype=np.float64)
    return weights / weights.sum()


def weighted_accuracy(targets, correct, weighting="balanced"):
    """``sum_k w_k acc_k`` (%) for each run of ``correct`` (... x runs x images, or one run): balanced accuracy,
    top-1 or the accuracy under a test prior (``class_weights``)."""
    correct = np.asarray(correct, dtype=np.float64)
    correct = correct[None] if correct.ndim == 1 else correct
    per_class = np.stack([correct[..., members].mean(axis=-1) for members in class_indices(targets)], axis=-1)
    return 100.0 * per_class @ class_weights(targets, weighting)


def image_variance(targets, correct, weighting="balanced", single_image=0.25):
    """The variance (%^2) that the test images alone give the mean over runs of ``weighted_accuracy``: resampling
    each class's images gives ``sum_k w_k^2 var_k / n_k``, ``var_k`` the unbiased (ddof 1) variance over class k's
    images of their mean correctness over the runs (``correct``: ... x runs x images; or a difference of two runs'
    correctness).  The runs share the images, so their image noise is counted once, not divided by the number of
    runs.  A class with one test image has no spread to measure: it gets ``single_image``, the largest variance its
    values can have (1/4 for a correctness in 0..1, 1 for a difference in -1..1)."""
    correct = np.asarray(correct, dtype=np.float64)
    mean_correct = correct if correct.ndim == 1 else correct.mean(axis=-2)
    weights = class_weights(targets, weighting)
    variance = sum(w ** 2 * (mean_correct[..., members].var(axis=-1, ddof=1) if len(members) > 1 else single_image)
                   / len(members) for w, members in zip(weights, class_indices(targets))) * 100.0 ** 2
    return float(variance) if np.ndim(variance) == 0 else variance


def effective_images(targets, weighting="balanced"):
    """Kish's effective number of test images of a weighted accuracy, ``1 / sum_k w_k^2 / n_k``: the number of
    equally weighted images whose accuracy would vary as much (N for top-1)."""
    sizes = np.array([len(members) for members in class_indices(targets)], dtype=np.float64)
    return float(1 / np.sum(class_weights(targets, weighting) ** 2 / sizes))


def accuracy_variance(targets, correct, weighting="balanced", level=0.95):
    """``image_variance`` of an accuracy plus that of z^2 pseudo-errors among its ``effective_images``: never 0, so
    runs with no error keep an interval about as wide as Wilson's score bound for 0 errors (``1 - z^2 / N``).  A
    variance estimated from the errors alone is 0 when no run errs, and an accuracy of 99.97 % on 1,000 images
    then got [100, 100] (docs/evaluation.md)."""
    from scipy.stats import norm
    pseudo_errors = norm.ppf(0.5 + level / 2) ** 2
    pseudo_variance = pseudo_errors * (100.0 / effective_images(targets, weighting)) ** 2
    return image_variance(targets, correct, weighting) + pseudo_variance


def images_interval(targets, correct, weighting="balanced", level=0.95):
    """95 % interval of the mean over runs of a weighted accuracy over the test images only (the runs held fixed):
    ``mean +- z sqrt(accuracy_variance)``, cut to 0..100."""
    from scipy.stats import norm
    value = float(weighted_accuracy(targets, correct, weighting).mean())
    half = norm.ppf(0.5 + level / 2) * math.sqrt(accuracy_variance(targets, correct, weighting, level))
    return [max(value - half, 0.0), min(value + half, 100.0)]


def mean_interval(values, image_var, level=0.95):
    """Interval of the mean of per-seed values (accuracies, or paired differences) that includes the seed spread
    and the test images: ``mean +- sqrt(t^2 s^2 / n + z^2 v)``, Student's t with n - 1 degrees of freedom on the
    spread over the n seeds (estimated from few runs) and the normal quantile on the test images' variance ``v``
    (known from thousands of images; ``image_variance``).  Each part gets the quantile its own estimate
    deserves; the sum in quadrature is exact for known normal parts and conservative otherwise (``s^2`` also holds
    the images' run-to-run noise).  Its coverage, simulated at 2-8 seeds: docs/evaluation.md.  Vectorised over
    leading dimensions (``values``: ... x n).  None for a single value: one run has no seed spread to measure."""
    from scipy.stats import norm, t
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    if n < 2:
        return None
    centre = values.mean(axis=-1)
    half = np.sqrt(t.ppf(0.5 + level / 2, n - 1) ** 2 * values.var(axis=-1, ddof=1) / n
                   + norm.ppf(0.5 + level / 2) ** 2 * np.asarray(image_var))
    if np.ndim(centre) == 0:
        return [float(centre - half), float(centre + half)]
    return np.stack([centre - half, centre + half], axis=-1)


def seed_intervals(targets, predictions, level=0.95, weighting=None):
    """95 % intervals of the mean top-1 and balanced accuracy of runs that differ in their training seed (and, with
    ``weighting``, of the accuracy under a test prior, key ``weighted``; ``accuracy_interval``); None for one run."""
    runs = _as_runs(predictions)
    if len(runs) < 2:
        return None
    correct = np.array([np.asarray(targets) == run for run in runs])
    kinds = {"acc": "top1", "balanced_acc": "balanced", **({"weighted": weighting} if weighting is not None else {})}
    return {key: accuracy_interval(targets, correct, kind, level) for key, kind in kinds.items()}


def accuracy_interval(targets, correct, weighting="balanced", level=0.95):
    """The interval of the mean accuracy of runs that differ in their seed (``correct``: ... x runs x images),
    including the seed-to-seed spread and the test images: ``mean_interval`` with ``accuracy_variance``, which stays
    honest at 100 %, cut to 0..100 (an accuracy cannot leave it, so the cut loses no coverage)."""
    interval = np.clip(mean_interval(weighted_accuracy(targets, correct, weighting),
                                     accuracy_variance(targets, correct, weighting, level), level), 0.0, 100.0)
    return interval.tolist() if interval.ndim == 1 else interval


def balanced_accuracy(targets, predictions):
    """Mean per-class recall (%) over the classes present."""
    correct = np.asarray(targets) == np.asarray(predictions)
    return 100.0 * float(np.mean([correct[members].mean() for members in class_indices(targets)]))


def paired_difference(targets, predictions_a, predictions_b, resamples=RESAMPLES, seed=0, level=0.95):
    """Balanced accuracy of B minus A (%) with a paired bootstrap interval: both runs are scored on the same
    resampled images in every replicate.  ``predictions_*`` may be lists (pairs of runs, e.g. seeds); then the
    difference is the mean over pairs, images resampled once per replicate for all of them."""
    runs_a, runs_b = _as_runs(predictions_a), _as_runs(predictions_b)
    targets = np.asarray(targets)
    draws = stratified_resamples(targets, resamples, seed)
    # The mean over pairs is linear: taken per image first, one pass over the replicates instead of two per pair.
    per_image = np.mean([(b == targets).astype(np.float64) - (a == targets) for a, b in zip(runs_a, runs_b)], axis=0)
    differences = _accuracies(per_image, draws)[1]
    point = np.mean([balanced_accuracy(targets, b) - balanced_accuracy(targets, a) for a, b in zip(runs_a, runs_b)])
    return float(point), percentile_interval(differences, level)


def mcnemar_exact(correct_a, correct_b):
    """Two-sided exact McNemar test: ``(b, c, p)`` with b = A right and B wrong, c = A wrong and B right."""
    from scipy.stats import binomtest

    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_over_seeds(targets, predictions_a, predictions_b, resamples=RESAMPLES, seed=0, level=0.95,
                      weighting="balanced"):
    """B minus A in balanced accuracy (%) (or under ``weighting``, ``class_weights``) over pairs of runs that share a
    seed, on the same images.

    Returns the per-pair differences, their mean, the images' variance of the mean (``image_var``) and three 95 %
    intervals of the mean: ``seeds_and_images`` (``mean_interval``), ``t`` (Student's t over the per-pair
    differences) and ``images`` (the pairs held fixed, a paired bootstrap of the images only); ``p_verdict``, the
    smallest level at which the verdict rule calls the difference (``verdict_p``); ``p_sign_flip``, the exact
    two-sided sign-flip p-value; ``smallest_p``, the smallest p the number of pairs allows; and ``seeds_needed``, how
    many pairs the verdict rule would need at the observed mean, spread and images (``seeds_needed``)."""
    targets = np.asarray(targets)
    correct_a = np.array([targets == run for run in _as_runs(predictions_a)], dtype=np.float64)
    correct_b = np.array([targets == run for run in _as_runs(predictions_b)], dtype=np.float64)
    differences, image_var = paired_differences(targets, predictions_a, predictions_b, weighting)
    draws = stratified_resamples(targets, resamples, seed)
    # Each replicate is the pairs' mean difference on one resample of the images; the mean over the pairs is linear,
    # so it is taken first, per image (one gather per class instead of two per pair).
    per_image = (correct_b - correct_a).mean(axis=0)
    replicates = sum(w * per_image[indices].mean(axis=1)
                     for w, indices in zip(class_weights(targets, weighting), draws)) * 100.0
    return {"differences": differences.tolist(), "mean": float(np.mean(differences)), "image_var": image_var,
            "seeds_and_images": mean_interval(differences, image_var, level),
            "t": t_interval(differences, level),
            "images": percentile_interval(replicates, level),
            "p_verdict": verdict_p(differences, image_var),
            "p_sign_flip": sign_flip_p(differences), "smallest_p": smallest_sign_flip_p(len(differences)),
            "seeds_needed": seeds_needed(differences, image_var, level)}


def paired_differences(targets, predictions_a, predictions_b, weighting="balanced"):
    """B minus A (%) per pair of runs on the same images (``weighted_accuracy``), and the images' variance of their
    mean (``image_variance`` of the difference in correctness)."""
    targets = np.asarray(targets)
    correct_a = np.array([targets == run for run in _as_runs(predictions_a)], dtype=np.float64)
    correct_b = np.array([targets == run for run in _as_runs(predictions_b)], dtype=np.float64)
    differences = weighted_accuracy(targets, correct_b, weighting) - weighted_accuracy(targets, correct_a, weighting)
    return differences, image_variance(targets, correct_b - correct_a, weighting, single_image=1.0)


def verdict_p(differences, image_var):
    """The p-value of the verdict rule: the smallest alpha at which the ``1 - alpha`` seeds+images interval of the
    mean difference (``mean_interval``; Student's t over the pairs lies inside it) excludes 0, found by bisection on
    log alpha.  1 for a mean of 0, 0 when neither the pairs nor the images vary.  Vectorised over leading dimensions
    (``differences``: ... x pairs, ``image_var``: ...)."""
    from scipy.stats import norm, t
    values = np.asarray(differences, dtype=np.float64)
    mean, spread = np.abs(values.mean(axis=-1)), values.var(axis=-1, ddof=1) / values.shape[-1]
    image_var = np.broadcast_to(np.asarray(image_var, dtype=np.float64), mean.shape)
    low, high = np.full(mean.shape, math.log(1e-300)), np.zeros(mean.shape)  # log alpha: the root lies between
    for _ in range(64):
        middle = (low + high) / 2
        alpha = np.exp(middle)
        half = np.sqrt(t.isf(alpha / 2, values.shape[-1] - 1) ** 2 * spread + norm.isf(alpha / 2) ** 2 * image_var)
        excludes = half < mean  # the interval at this alpha already excludes 0: the p-value is smaller
        high, low = np.where(excludes, middle, high), np.where(excludes, low, middle)
    p = np.where(mean == 0, 1.0, np.where((spread == 0) & (image_var == 0), 0.0, np.exp(high)))
    return float(p) if p.ndim == 0 else p


def holm(p_values, alpha=0.05):
    """Holm's step-down correction of a family of comparisons: per comparison, the level it is held to,
    ``alpha / (m - rank)`` (rank its place among the p-values, smallest first), and whether the family calls it
    (its p and every smaller p below their levels).  The chance of calling any true null is at most ``alpha``
    whatever the comparisons' dependence (Holm, 1979)."""
    levels, called = [0.0] * len(p_values), [False] * len(p_values)
    going = True
    for rank, index in enumerate(np.argsort(p_values, kind="stable")):
        levels[index] = alpha / (len(p_values) - rank)
        going = going and p_values[index] < levels[index]
        called[index] = going
    return levels, called


def seeds_needed(differences, image_var=0.0, level=0.95, most=1000):
    """The fewest pairs n (at least 2) at which the verdict rule calls a mean difference d as large as the observed
    one: the seeds+images interval excludes 0, ``t_{n-1}^2 s^2 / n + z^2 v < d^2``, with the observed standard
    deviation s of the per-pair differences and the images' variance v (taken as fixed).  A rough guide, not a
    guarantee: d, s and v of a few pairs are themselves uncertain.  ``math.inf`` when the images' part alone,
    ``z sqrt(v)``, reaches |d|: no number of seeds can, more test images can; None when d is 0 or more than ``most``
    pairs would be needed; 2 when every pair agrees exactly and the images allow it."""
    from scipy.stats import norm, t
    values = np.asarray(differences, dtype=np.float64)
    mean, spread = abs(values.mean()), values.std(ddof=1) if len(values) > 1 else math.nan
    if mean == 0 or math.isnan(spread):
        return None
    images_part = norm.ppf(0.5 + level / 2) ** 2 * image_var
    if images_part >= mean ** 2:
        return math.inf
    for n in range(2, most + 1):
        if t.ppf(0.5 + level / 2, n - 1) ** 2 * spread ** 2 / n + images_part < mean ** 2:
            return n
    return None


def t_interval(values, level=0.95):
    """Student's t interval of the mean of ``values`` (at least two)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=np.float64)
    half = t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def sign_flip_p(differences, exact_up_to=20, draws=2**20, seed=0):
    """Two-sided sign-flip (permutation) p-value of the mean of paired differences: the share of the 2^n ways of
    flipping their signs whose mean is at least as far from 0 as the observed one (exact up to ``exact_up_to``
    pairs, else from ``draws`` random flips)."""
    values = np.asarray(differences, dtype=np.float64)
    if len(values) <= exact_up_to:
        signs = 1 - 2 * ((np.arange(2 ** len(values))[:, None] >> np.arange(len(values))) & 1)
        means = np.abs(signs @ values) / len(values)
        return float(np.mean(means >= abs(values.mean()) * (1 - 1e-12)))
    signs = np.random.default_rng(seed).choice((-1, 1), size=(draws, len(values)))
    hits = np.sum(np.abs(signs @ values) / len(values) >= abs(values.mean()) * (1 - 1e-12))
    return float((hits + 1) / (draws + 1))  # the observed signs count as one draw: never 0


def smallest_sign_flip_p(pairs):
    """The smallest p-value a two-sided sign-flip test over ``pairs`` pairs can give: 2 / 2^n."""
    return min(1.0, 2.0 / 2 ** pairs)


def pairs_needed(alpha=0.05):
    """The fewest pairs whose sign-flip test can reach ``p <= alpha`` (6 for 0.05)."""
    pairs = 1
    while smallest_sign_flip_p(pairs) > alpha:
        pairs += 1
    return pairs


def diverging(groups, floors=None, limit=5.0):
    """Which values (e.g. seeds' validation accuracies) lie more than ``limit`` robust standard deviations from their
    group's median: ``(flags per group, threshold distance per group)``.  The scale is 1.4826 times the median
    absolute deviation of every value from its group's median, pooled over the groups (the median value of an odd
    group, 0 by construction, left out when at least 4 deviations remain) and at least the group's ``floor``; a
    group of fewer than 3 values is not judged (with 2, which one diverged cannot be told).  Pooling and the floor
    keep a few seeds that happen to agree closely from making an ordinary seed look diverging (docs/evaluation.md
    gives the rule's false alarms and its power)."""
    groups = [np.asarray(values, dtype=np.float64) for values in groups]
    floors = [0.0] * len(groups) if floors is None else floors
    deviations, kept = [], []
    for values in groups:
        if len(values):
            distance = np.abs(values - np.median(values))
            deviations.append(distance)
            kept.append(np.delete(distance, np.argsort(values)[len(values) // 2]) if len(values) % 2 else distance)
    pooled = np.concatenate(kept) if sum(map(len, kept)) >= 4 else np.concatenate(deviations or [np.zeros(0)])
    scale = 1.4826 * float(np.median(pooled)) if len(pooled) else 0.0
    thresholds = [limit * max(scale, floor) for floor in floors]
    flags = [(np.abs(values - np.median(values)) > threshold) & (len(values) >= 3) if len(values) else np.zeros(0, bool)
             for values, threshold in zip(groups, thresholds)]
    return [flag.tolist() for flag in flags], thresholds


# ---------------------------------------------------------------- calibration

def calibration_bins(probabilities, targets, bins=15, weights=None):
    """Per equal-width confidence bin: (count, mean confidence, accuracy); empty bins have count 0.  With
    ``weights`` (one per image) the counts and means are weighted."""
    probabilities = np.asarray(probabilities)
    return confidence_bins(probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(targets), bins,
                           weights)


def confidence_bins(confidence, correct, bins=15, weights=None):
    """``calibration_bins`` from each image's top-1 probability and whether its top-1 class is right."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct)
    weights = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin.
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, weights=weights, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=weights * confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=weights * correct, minlength=bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities, targets, bins=15, weights=None):
    """ECE (%): sum over bins of (bin share) x |accuracy - mean confidence| (the images weighted by ``weights``)."""
    return binned_calibration_error(*calibration_bins(probabilities, targets, bins, weights))


def binned_calibration_error(counts, confidence, accuracy):
    """ECE (%) of ``calibration_bins``' (or ``confidence_bins``') output."""
    filled = counts > 0
    return 100.0 * float(np.sum(counts[filled] / counts.sum() * np.abs(accuracy[filled] - confidence[filled])))


# ---------------------------------------------------------------- post-hoc logit adjustment

def adjust_logits(log_probabilities, class_counts, tau):
    """Menon et al. (2021): ``z - tau * log(prior)``, prior = the training split's class frequencies."""
    counts = np.asarray(class_counts, dtype=np.float64)
    logits = np.asarray(log_probabilities)
    return logits - (tau * np.log(counts / counts.sum())).astype(np.result_type(logits, np.float32))


def choose_tau(log_probabilities, targets, class_counts, taus=TAUS):
    """The tau of ``taus`` with the best balanced accuracy on the given (validation) predictions; ties: smallest."""
    return _best(taus, lambda tau: adjust_logits(log_probabilities, class_counts, tau), targets)


def tau_normalise(logits, norms, tau, bias=None):
    """Kang et al. (2020), as their ``tau_norm.py`` computes it: ``x . (w_j / ||w_j||^tau)``, each class's weight
    vector divided by its norm to the power tau and the bias dropped, from the logits ``z_j = w_j . x + b_j`` as
    ``(z_j - b_j) / ||w_j||^tau`` (tau 0 is then the network without its bias)."""
    logits = np.asarray(logits)
    if bias is not None:
        logits = logits - np.asarray(bias).astype(np.result_type(logits, np.float32))
    return logits / (np.asarray(norms, dtype=np.float64) ** tau).astype(np.result_type(logits, np.float32))


def choose_tau_norm(logits, targets, norms, taus=TAUS, bias=None):
    """The tau-normalisation power of ``taus`` with the best balanced accuracy on the given (validation) logits."""
    return _best(taus, lambda tau: tau_normalise(logits, norms, tau, bias), targets)


def _best(taus, adjusted, targets):
    scores = [balanced_accuracy(targets, adjusted(tau).argmax(axis=1)) for tau in taus]
    return float(taus[int(np.argmax(scores))])


# ---------------------------------------------------------------- shifted test distributions

# Zhang et al. (SADE, NeurIPS 2022): forward long-tailed test priors (the training order), uniform, and backward.
SHIFTED_PRIORS = ("forward-50", "forward-25", "forward-10", "forward-5", "forward-2", "uniform",
                  "backward-2", "backward-5", "backward-10", "backward-25", "backward-50")


def test_prior(name, class_counts):
    """The class prior of a test distribution: ``uniform``, ``forward-R`` (as long-tailed as training, in its
    order, with imbalance ratio R: the class of rank r among the training counts, largest first, gets
    ``R^(-r/(K-1))``) or ``backward-R`` (the same, the order reversed).  ``ValueError`` for another name."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if name == "uniform":
        return np.full(len(counts), 1 / len(counts))
    kind, _, ratio = str(name).partition("-")
    try:
        ratio = float(ratio)
    except ValueError:
        ratio = math.nan
    if kind not in ("forward", "backward") or not math.isfinite(ratio) or ratio < 1:
        raise ValueError(f"unknown test prior {name!r}: give uniform, forward-R or backward-R (R >= 1), or all")
    rank = np.empty(len(counts))
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    if kind == "backward":
        rank = len(counts) - 1 - rank
    prior = ratio ** (-rank / max(len(counts) - 1, 1))
    return prior / prior.sum()


def present_prior(targets, prior):
    """The probabilities a test ``prior`` (one per class) gives the classes present in ``targets``, in class order.
    A prior that puts mass on a class with no test image asks for an accuracy these images cannot estimate:
    ``ValueError`` naming the classes and the mass, never a silent renormalisation over the classes present."""
    prior = np.asarray(prior, dtype=np.float64)
    present = np.unique(targets)
    absent = np.setdiff1d(np.flatnonzero(prior > 0), present)
    if len(absent):
        shown = ", ".join(map(str, absent[:10])) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise ValueError(f"the test prior puts {100 * prior[absent].sum() / prior.sum():.2f} % of its mass on "
                         f"{len(absent)} class(es) with no test image (class index {shown}), whose accuracy these "
                         "images cannot give; evaluate a split that has every class, or leave that prior out")
    return prior[present]


def prior_weights(targets, prior):
    """Per image, its importance weight ``prior_k / empirical_k`` for its class k: the test images as a sample of
    the distribution with class prior ``prior`` (no image dropped; ``present_prior`` refuses a prior the images
    cannot express)."""
    targets = np.asarray(targets)
    present_prior(targets, prior)
    empirical = np.bincount(targets, minlength=len(prior)) / len(targets)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(empirical > 0, np.asarray(prior) / empirical, 0.0)
    return ratio[targets]


def shifted_metrics(targets, probabilities, prior, class_counts=None, many_shot=100, few_shot=20, level=0.95):
    """Every metric of one evaluation under a test prior, by importance weights on the same images: top-1 (``acc``,
    ``sum_k prior_k acc_k``) with its 95 % interval over the images (``images_interval``), macro-F1 and ECE with the
    images weighted, and what no prior changes: balanced accuracy and the shot groups' accuracies, plain means of
    their classes' recalls as SADE takes them (``group_accuracies``).  ``ValueError`` for a prior that puts mass on
    a class with no test image (``present_prior``)."""
    targets, probabilities = np.asarray(targets), np.asarray(probabilities)
    predictions = probabilities.argmax(axis=1)
    correct = predictions == targets
    present = np.unique(targets)
    weights_by_class = present_prior(targets, prior)
    sample_weight = prior_weights(targets, prior)
    result = {"acc": float(weighted_accuracy(targets, correct, weights_by_class)[0]),
              "acc_ci95": images_interval(targets, correct, weights_by_class, level),
              "balanced_acc": balanced_accuracy(targets, predictions),
              "macro_f1": macro_f1(targets, predictions, len(prior), sample_weight),
              "ece": expected_calibration_error(probabilities, targets, weights=sample_weight)}
    if class_counts is not None:
        recall = np.array([correct[targets == k].mean() if np.any(targets == k) else np.nan for k in range(len(prior))])
        result.update(group_accuracies(recall, present, class_counts, many_shot, few_shot))
    return result


# ---------------------------------------------------------------- how often the intervals hold what they promise

def interval_coverage(seeds, seed_spread, test_images, accuracy=80.0, shared=0.5, difference=False,
                      replicates=20_000, seed=0, level=0.95, agreement=0.7):
    """The share of simulated experiments with a known truth whose ``mean_interval`` covers it.

    Each of ``replicates`` experiments trains ``seeds`` runs: a run's true accuracy (in points) is the method's
    ``accuracy`` plus a seed effect of standard deviation ``seed_spread``, and it is scored on a test set of
    ``test_images`` images, which adds binomial noise of variance ``p (1 - p) / N``; the part ``shared`` of it comes
    from the test set itself and is the same for every run (the runs share their images), the rest is each run's
    own.  The interval is given the images' variance of the mean over runs that ``image_variance`` measures (the
    shared part plus the own part over the number of runs).  With ``difference`` the values are the paired
    differences of two methods (true difference 0, a seed spread of the differences ``seed_spread``) whose
    per-image correctness is correlated ``agreement``: image noise ``2 p (1 - p) (1 - agreement) / N``."""
    rng = np.random.default_rng([seed, seeds, int(seed_spread * 100), test_images, int(shared * 100), int(difference)])
    p = accuracy / 100
    noise = p * (1 - p) * (2 * (1 - agreement) if difference else 1.0) / test_images * 100 ** 2
    shared_var, own_var = shared * noise, (1 - shared) * noise
    values = (seed_spread * rng.standard_normal((replicates, seeds))
              + np.sqrt(shared_var) * rng.standard_normal((replicates, 1))
              + np.sqrt(own_var) * rng.standard_normal((replicates, seeds)))
    intervals = mean_interval(values, shared_var + own_var / seeds, level)
    return float(np.mean((intervals[:, 0] <= 0) & (0 <= intervals[:, 1])))
