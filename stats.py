"""Statistics of predictions: imbalance metrics, bootstrap intervals, paired tests, calibration, post-hoc logit
adjustment.

Used by 1_train.py (validation metrics per epoch), 2_test.py (one evaluation) and compare.py (two runs or two
groups of seeds).
Accuracies are in percent.  Bootstrap resamples are stratified by class: each
replicate draws, within every class, as many images as the class has (with
replacement), so class sizes, and with them balanced accuracy's definition, stay
fixed.  All resampling is vectorised and seeded.
"""
import math

import numpy as np

from utils import save_svg

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


def classification_metrics(targets, predictions, num_classes, class_counts=None, many_shot=100, few_shot=20):
    """Top-1 (%), balanced accuracy (%), macro-F1 (%), per-class recall and shot-group accuracies."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    labels = list(range(num_classes))
    present = np.unique(targets)
    per_class_recall = recall_score(targets, predictions, labels=labels, average=None, zero_division=0)
    metrics = {
        "acc": 100.0 * float(np.mean(np.asarray(targets) == np.asarray(predictions))),
        # Balanced accuracy over the classes that occur in this split.
        "balanced_acc": 100.0 * float(balanced_accuracy_score(targets, predictions)) if len(present) else math.nan,
        "macro_f1": 100.0 * float(f1_score(targets, predictions, labels=present, average="macro", zero_division=0)),
        "per_class_recall": per_class_recall,
    }
    if class_counts is not None:
        for group, members in shot_groups(class_counts, many_shot, few_shot).items():
            members = np.intersect1d(members, present)
            metrics[f"{group}_acc"] = 100.0 * float(per_class_recall[members].mean()) if len(members) else math.nan
    return metrics


# ---------------------------------------------------------------- bootstrap intervals and paired tests


def class_indices(targets):
    """``[indices of class c]`` for the classes present, in class order."""
    targets = np.asarray(targets)
    return [np.flatnonzero(targets == c) for c in np.unique(targets)]


def stratified_resamples(targets, resamples=RESAMPLES, seed=0):
    """Per class, a ``resamples x n_c`` array of indices into the split (one row per replicate)."""
    rng = np.random.default_rng(seed)
    return [members[rng.integers(0, len(members), size=(resamples, len(members)))]
            for members in class_indices(targets)]


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


def _replicates(targets, runs, draws):
    """Top-1 and balanced accuracy (%) of every run on every image replicate: two ``runs x resamples`` arrays."""
    per_run = [_accuracies(np.asarray(targets) == run, draws) for run in runs]
    return np.array([top1 for top1, _ in per_run]), np.array([balanced for _, balanced in per_run])


def bootstrap_intervals(targets, predictions, resamples=RESAMPLES, seed=0, level=0.95):
    """95 % stratified bootstrap intervals of top-1 and balanced accuracy over the test images only:
    ``{"acc": [lo, hi], "balanced_acc": [lo, hi]}``.

    ``predictions`` may also be a list of prediction arrays on the same images (runs
    with different seeds): the interval is then that of their mean, with the images
    resampled once per replicate for all runs and the runs held fixed.
    """
    top1, balanced = _replicates(targets, _as_runs(predictions), stratified_resamples(targets, resamples, seed))
    return {"acc": percentile_interval(top1.mean(axis=0), level),
            "balanced_acc": percentile_interval(balanced.mean(axis=0), level)}


def _seed_draws(runs, resamples, seed):
    """Per replicate, ``runs`` run indices drawn with replacement (the first level of the two-level bootstrap)."""
    return np.random.default_rng([seed, 1]).integers(0, runs, size=(resamples, runs))


def _mean_over_drawn(values, drawn):
    """Replicate r's mean of ``values[run, r]`` over the runs drawn for it."""
    return values[drawn, np.arange(values.shape[1])[:, None]].mean(axis=1)


def seed_intervals(targets, predictions, resamples=RESAMPLES, seed=0, level=0.95):
    """95 % intervals of the mean top-1 and balanced accuracy of runs that differ in their training seed, that
    include the seed-to-seed spread: a two-level bootstrap, each replicate drawing the runs with replacement, then
    the test images (stratified), and scoring every drawn run on those images.

    The images are drawn once per replicate for all drawn runs: the runs share one test set, so they share its
    sampling error; drawing them per run would treat it as n independent test sets and understate that part.
    """
    runs = _as_runs(predictions)
    top1, balanced = _replicates(targets, runs, stratified_resamples(targets, resamples, seed))
    drawn = _seed_draws(len(runs), resamples, seed)
    return {"acc": percentile_interval(_mean_over_drawn(top1, drawn), level),
            "balanced_acc": percentile_interval(_mean_over_drawn(balanced, drawn), level)}


def balanced_accuracy(targets, predictions):
    """Mean per-class recall (%) over the classes present."""
    correct = np.asarray(targets) == np.asarray(predictions)
    return 100.0 * float(np.mean([correct[members].mean() for members in class_indices(targets)]))


def paired_difference(targets, predictions_a, predictions_b, resamples=RESAMPLES, seed=0, level=0.95):
    """Balanced accuracy of B minus A (%) with a paired bootstrap interval: both runs are scored on the same
    resampled images in every replicate.  ``predictions_*`` may be lists (pairs of runs, e.g. seeds); then the
    difference is the mean over pairs, images resampled once per replicate for all of them."""
    runs_a = [np.asarray(p) for p in (predictions_a if np.ndim(predictions_a) == 2 else [predictions_a])]
    runs_b = [np.asarray(p) for p in (predictions_b if np.ndim(predictions_b) == 2 else [predictions_b])]
    targets = np.asarray(targets)
    draws = stratified_resamples(targets, resamples, seed)
    differences = np.zeros(resamples)
    for a, b in zip(runs_a, runs_b):
        differences += _accuracies(b == targets, draws)[1] - _accuracies(a == targets, draws)[1]
    differences /= len(runs_a)
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


def paired_over_seeds(targets, predictions_a, predictions_b, resamples=RESAMPLES, seed=0, level=0.95):
    """B minus A in balanced accuracy (%) over pairs of runs that share a seed, on the same images.

    Returns the per-pair differences, their mean, and three 95 % intervals of the mean: ``seeds_and_images``
    (two-level paired bootstrap: the pairs drawn with replacement, then the images once, both runs of a drawn
    pair scored on them), ``t`` (Student's t over the per-pair differences) and ``images`` (the pairs held fixed,
    images only); and ``p_sign_flip``, the exact two-sided sign-flip p-value of the mean difference.
    """
    targets = np.asarray(targets)
    runs_a, runs_b = _as_runs(predictions_a), _as_runs(predictions_b)
    draws = stratified_resamples(targets, resamples, seed)
    differences_per_replicate = _replicates(targets, runs_b, draws)[1] - _replicates(targets, runs_a, draws)[1]
    differences = [balanced_accuracy(targets, b) - balanced_accuracy(targets, a) for a, b in zip(runs_a, runs_b)]
    drawn = _seed_draws(len(runs_a), resamples, seed)
    return {"differences": differences, "mean": float(np.mean(differences)),
            "seeds_and_images": percentile_interval(_mean_over_drawn(differences_per_replicate, drawn), level),
            "t": t_interval(differences, level),
            "images": percentile_interval(differences_per_replicate.mean(axis=0), level),
            "p_sign_flip": sign_flip_p(differences)}


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


# ---------------------------------------------------------------- calibration

def calibration_bins(probabilities, targets, bins=15):
    """Per equal-width confidence bin: (count, mean confidence, accuracy); empty bins have count 0."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = probabilities.argmax(axis=1) == np.asarray(targets)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin.
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities, targets, bins=15):
    """ECE (%): sum over bins of (bin share) x |accuracy - mean confidence|."""
    counts, confidence, accuracy = calibration_bins(probabilities, targets, bins)
    filled = counts > 0
    return 100.0 * float(np.sum(counts[filled] / counts.sum() * np.abs(accuracy[filled] - confidence[filled])))


def plot_reliability(probabilities, targets, path, title, bins=15):
    """Reliability diagram: accuracy per confidence bin against the diagonal, as SVG."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    counts, confidence, accuracy = calibration_bins(probabilities, targets, bins)
    edges = np.linspace(0, 1, bins + 1)
    figure, axes = plt.subplots(figsize=(4.8, 4.8))
    filled = counts > 0
    axes.bar(edges[:-1][filled], accuracy[filled], width=1 / bins, align="edge", edgecolor="black",
             color="#4c72b0", label="accuracy")
    axes.bar(edges[:-1][filled], (confidence - accuracy)[filled], bottom=accuracy[filled], width=1 / bins,
             align="edge", color="#dd8452", alpha=0.5, label="gap to confidence")
    axes.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top-1 probability)")
    axes.set_ylabel("accuracy")
    axes.set_title(f"{title}\nECE {expected_calibration_error(probabilities, targets, bins):.2f} %", fontsize=9)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    save_svg(figure, path)
    plt.close(figure)


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
