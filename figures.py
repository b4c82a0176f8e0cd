"""The figures of an evaluation, a comparison and a report: each draws with matplotlib and writes an SVG file (through
``utils.save_svg``), or, given no path, returns the SVG text to inline into a page (``report.py``)."""
import io
import statistics

import numpy as np

import stats
from utils import save_svg

MAX_LABELLED_CLASSES = 30


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # real text in the svg: smaller, searchable
    import matplotlib.pyplot as plt
    return plt


def _finish(figure, path):
    """Write ``figure`` to ``path`` as SVG, or return its SVG text when ``path`` is None."""
    plt = _pyplot()
    try:
        if path is not None:
            save_svg(figure, path)
            return None
        text = io.StringIO()
        figure.savefig(text, format="svg")
        return text.getvalue()
    finally:
        plt.close(figure)


def plot_class_counts(class_counts, classes, path, title):
    """The training images of each class, largest first (log scale when they span more than 10 times)."""
    plt = _pyplot()
    order = np.argsort(-np.asarray(class_counts), kind="stable")
    counts = np.asarray(class_counts)[order]
    figure, axes = plt.subplots(figsize=(7, 3.2))
    axes.bar(range(len(counts)), counts, color="#4c72b0", width=0.85)
    if len(classes) <= MAX_LABELLED_CLASSES:
        axes.set_xticks(range(len(counts)), [classes[i] for i in order], rotation=60, ha="right", fontsize=7)
    else:
        axes.set_xlabel("classes, largest first")
    if counts.max() > 10 * max(counts.min(), 1):
        axes.set_yscale("log")
    axes.set_ylabel("training images")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return _finish(figure, path)


def confusion_fractions(targets, predictions, num_classes):
    """Row-normalised confusion matrix: entry (i, j) is the fraction of class i's images predicted as j (a row of
    zeros for a class with no image)."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64) * num_classes + np.asarray(predictions),
                         minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_confusion_matrix(targets, predictions, classes, path, title):
    """Row-normalised confusion matrix as SVG; class names on the axes up to 30 classes."""
    plt = _pyplot()
    matrix = confusion_fractions(targets, predictions, len(classes))
    size = min(4 + 0.3 * len(classes), 24)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if len(classes) <= MAX_LABELLED_CLASSES:
        ticks = np.arange(len(classes))
        axes.set_xticks(ticks, classes, rotation=90 if max(map(len, classes)) > 3 else 0)
        axes.set_yticks(ticks, classes)
    if len(classes) <= 15:
        for (row, col), value in np.ndenumerate(matrix):
            if value >= 0.005:
                axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                          color="white" if value > 0.5 else "black")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    figure.tight_layout()
    return _finish(figure, path)




def plot_per_class(table, class_counts, path, title, many_shot=100, few_shot=20):
    """Each class's accuracy (recall) against its training images (log scale), one mark a class, over the
    few/medium/many-shot bands, with the mean accuracy of each band: the long-tail figure, readable at 10
    classes and at thousands."""
    plt = _pyplot()

    counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1)
    recall = np.array([row["recall"] for row in table])
    figure, axes = plt.subplots(figsize=(7, 4.2))
    low, high = counts.min() / 1.5, counts.max() * 1.5
    bands = (("few", low, few_shot, "#f2d0a9"), ("medium", few_shot, many_shot, "#d9e8f5"),
             ("many", many_shot, high, "#d6ecd2"))
    groups = stats.shot_groups(counts, many_shot, few_shot)  # the classes of the printed many/medium/few accuracies
    for name, start, end, colour in bands:
        start, end = max(start, low), min(end, high)
        members = np.isin(np.arange(len(counts)), groups[name])
        if end <= start:
            continue
        axes.axvspan(start, end, color=colour, alpha=0.6, linewidth=0)
        if members.any():
            axes.hlines(recall[members].mean(), start, end, colors="black", linewidth=1.2)
            axes.text(np.sqrt(start * end), 101, f"{name}: {int(members.sum()):,}", ha="center", fontsize=8)
    size = max(2.0, min(30.0, 3000 / len(counts)))
    axes.scatter(counts, recall, s=size, color="#4c72b0", alpha=0.8 if len(counts) < 500 else 0.35, linewidths=0,
                 gid="classes")
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    axes.set_ylim(-2, 108)
    axes.set_xlabel("training images of the class (log scale)")
    axes.set_ylabel("accuracy of the class (%)")
    axes.set_title(f"{title}: {len(counts):,} classes; lines: band means", fontsize=9)
    figure.tight_layout()
    return _finish(figure, path)




def plot_reliability(top_probability, correct, path, title, bins=15):
    """Reliability diagram: accuracy per confidence bin against the diagonal, as SVG, from each image's top-1
    probability and whether its top-1 class is right."""
    plt = _pyplot()

    counts, confidence, accuracy = stats.confidence_bins(top_probability, correct, bins)
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
    axes.set_title(f"{title}\nECE {stats.binned_calibration_error(counts, confidence, accuracy):.2f} %", fontsize=9)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return _finish(figure, path)


def plot_prior_shift(results, path, title):
    """Top-1 accuracy against the test prior (SADE's forward 50 ... backward 50), one line per method (and, dashed, its
    post-hoc adjustment for the known prior): ``results`` maps a label to its ``test_priors`` record."""
    plt = _pyplot()

    figure, axes = plt.subplots(figsize=(7.5, 4.2))
    for label, priors in results.items():
        names = [name for name in stats.SHIFTED_PRIORS if name in priors]
        line, = axes.plot(range(len(names)), [priors[name]["acc"] for name in names], marker="o", linewidth=1.5,
                          label=label)
        if all("posthoc" in priors[name] for name in names):
            axes.plot(range(len(names)), [priors[name]["posthoc"]["acc"] for name in names], linestyle="--",
                      color=line.get_color(), linewidth=1, label=f"{label}, post-hoc for the prior")
    axes.set_xticks(range(len(stats.SHIFTED_PRIORS)), [name.replace("ward-", ".") for name in stats.SHIFTED_PRIORS],
                    rotation=45)
    axes.set_xlabel("test class prior (forward: as skewed as training; backward: reversed; R = imbalance)")
    axes.set_ylabel("top-1 accuracy under the prior (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    return _finish(figure, path)


def plot_curves(curves, path, title):
    """Mean validation top-1 per epoch of every group, one line each: ``curves`` maps a label to the runs' accuracy
    per epoch (``results.validation_curves``)."""
    plt = _pyplot()

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, runs in curves.items():
        length = min(map(len, runs))
        mean = [statistics.fmean(run[epoch] for run in runs) for epoch in range(length)]
        axes.plot(range(1, length + 1), mean, label=label, linewidth=1.5)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _finish(figure, path)
