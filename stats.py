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


def bootstrap_intervals(targets, predictions, resamples=RESAMPLES, seed=0, level=0.95):
    """95 % stratified bootstrap intervals of top-1 and balanced accuracy: ``{"acc": [lo, hi], ...}``.

    ``predictions`` may also be a list of prediction arrays on the same images (runs
    with different seeds): the interval is then that of their mean, with the images
    resampled once per replicate for all runs.
    """
    runs = [np.asarray(p) for p in (predictions if np.ndim(predictions) == 2 else [predictions])]
    draws = stratified_resamples(targets, resamples, seed)
    top1, balanced = np.zeros(resamples), np.zeros(resamples)
    for run in runs:
        run_top1, run_balanced = _accuracies(np.asarray(targets) == run, draws)
        top1 += run_top1 / len(runs)
        balanced += run_balanced / len(runs)
    return {"acc": percentile_interval(top1, level), "balanced_acc": percentile_interval(balanced, level)}


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


# ---------------------------------------------------------------- calibration

def calibration_bins(probabilities, targets, bins=15):
    """Per equal-width confidence bin: (count, mean confidence, accuracy); empty bins have count 0."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
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
    return np.asarray(log_probabilities, dtype=np.float64) - tau * np.log(counts / counts.sum())


def choose_tau(log_probabilities, targets, class_counts, taus=TAUS):
    """The tau of ``taus`` with the best balanced accuracy on the given (validation) predictions; ties: smallest."""
    scores = [balanced_accuracy(targets, adjust_logits(log_probabilities, class_counts, tau).argmax(axis=1))
              for tau in taus]
    return float(taus[int(np.argmax(scores))])
