"""Compare training runs: mean +- std over seeds of the test metrics, and validation curves.

    python compare.py --dataset fmnist-lt --model_index 41 --datetime all --markdown table.md
    python compare.py --dataset digits-lt --model_index 41 --objectives ERM CCE --plot curves.svg
    python compare.py --runs logs/SimpleCNN/digits-lt/ERM/2026-11-29-10-00-00 ... --plot curves.svg
    python compare.py --runs RUN_A RUN_B                         # B minus A, paired, on the same test images
    python compare.py --dataset fmnist-lt --model_index 41 --objectives ERM CCE --datetime all --paired

Runs that differ only in their seed form one group (one row).  Each run is read
from its folder: ``test_metrics.json`` (or ``valid_metrics.json``) written by
2_test.py, ``valid.csv`` and ``train.csv`` written by 1_train.py, and the run's
arguments (``config.json``, or the checkpoint of runs older than that file).
Intervals and paired tests need ``<split>_predictions.npz`` (2_test.py writes it).
"""
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

import criterion
import stats
from runs import (TRAIN_CSV, VALID_CSV, find_run_dir, list_runs, load_predictions, metrics_file, model_folder,
                  read_csv, run_parent, run_settings)
from utils import ArgumentParser, UserError, atomic_write, run_cli, save_svg

METRICS = (("acc", "top-1"), ("balanced_acc", "bal. acc"), ("macro_f1", "macro-F1"),
           ("many_acc", "many"), ("medium_acc", "medium"), ("few_acc", "few"))
# Arguments that never change what a run learns (paths, speed, bookkeeping) and the seed: not part of a group.
NOT_A_SETTING = {"seed", "resume", "data_dir", "logs_dir", "cache_mb", "disk_cache", "workers", "compile", "no_amp",
                 "skip_bad_images", "sync_bn", "many_shot", "few_shot"}


def get_args_parser():
    parser = ArgumentParser(description="Compare runs: one row per group of runs that differ only in seed.")
    parser.add_argument("--runs", nargs="+", default=[], help="run folders")
    parser.add_argument("--dataset", help="with --model_index: pick runs by name")
    parser.add_argument("--model_index", type=int)
    parser.add_argument("--objectives", nargs="+", default=[], choices=list(criterion.OBJECTIVES),
                        help="objectives to pick (default with --dataset: all that have runs)")
    parser.add_argument("--datetime", default="latest",
                        help="run of each objective: latest (default), all, or YYYY-MM-DD-HH-MM-SS")
    parser.add_argument("--logs_dir", default="logs")
    parser.add_argument("--plot", default=None, help="write the mean validation accuracy per epoch of every group to this svg")
    parser.add_argument("--markdown", default=None, help="also write the table to this markdown file")
    parser.add_argument("--paired", action="store_true",
                        help="compare two groups of seeds run by run (paired by seed): second group minus first")
    parser.add_argument("--split", choices=("test", "valid"), default=None,
                        help="split whose saved predictions to use (default: test, else valid)")
    return parser


def resolve_runs(args):
    runs = [Path(run) for run in args.runs]
    if args.dataset is not None or args.objectives:
        if args.dataset is None or args.model_index is None:
            raise UserError("--objectives and --dataset need both --dataset and --model_index")
        name = model_folder(args.model_index)
        objectives = args.objectives or [o for o in criterion.OBJECTIVES if list_runs(args.logs_dir, name, args.dataset, o)]
        if not objectives:
            raise UserError(f"no runs under {Path(args.logs_dir) / name / args.dataset}")
        for objective in objectives:
            if args.datetime == "all":
                found = list_runs(args.logs_dir, name, args.dataset, objective)
                if not found:
                    find_run_dir(args.logs_dir, name, args.dataset, objective, "latest")  # raises, naming the folder
                runs += [run_parent(args.logs_dir, name, args.dataset, objective) / run for run in found]
            else:
                runs.append(find_run_dir(args.logs_dir, name, args.dataset, objective, args.datetime))
    if not runs:
        raise UserError("name runs with --runs, or with --dataset and --model_index")
    missing = [str(run) for run in runs if not (run / VALID_CSV).is_file()]
    if missing:
        raise UserError(f"not a training run folder (no valid.csv): {', '.join(missing)}")
    return list(dict.fromkeys(runs))


# ---------------------------------------------------------------- one run

def run_metrics(run):
    """Test metrics when 2_test.py has run, else the best validation epoch; plus training minutes."""
    train_rows = read_csv(run / TRAIN_CSV) if (run / TRAIN_CSV).is_file() else []
    minutes = sum(float(row.get("time_s") or "nan") for row in train_rows) / 60 if train_rows else math.nan
    for split in ("test", "valid"):
        path = run / metrics_file(split)
        if path.is_file():
            metrics = json.loads(path.read_text())
            return {"split": split, "minutes": minutes, **{key: float(metrics.get(key, math.nan)) for key, _ in METRICS}}
    rows = read_csv(run / VALID_CSV)
    if not rows:
        return {"split": "-", "minutes": minutes, **{key: math.nan for key, _ in METRICS}}
    best = max(rows, key=lambda row: float(row["acc"]))
    return {"split": "best valid", "minutes": minutes,
            **{key: float(best.get(key) or "nan") for key, _ in METRICS}}


def run_objective(run):
    """The objective, from ``logs/<Model>/<dataset>/<objective>/<time>``."""
    return run.parent.name


# ---------------------------------------------------------------- groups

def setting_key(objective, settings):
    """What makes two runs the same experiment: every setting except the seed and bookkeeping, and of the
    objective options only those the objective reads under these settings (``criterion.OBJECTIVES``)."""
    entry = criterion.OBJECTIVES.get(objective)
    unread = set(criterion.OPTIONS) - set(entry.reads(settings)) if entry else set()
    return tuple(sorted((key, json.dumps(value, sort_keys=True)) for key, value in settings.items()
                        if key not in NOT_A_SETTING and key not in unread))


def group_runs(runs):
    """``[(label, [runs])]`` in first-seen order; runs of one group differ only in seed."""
    groups = {}
    for run in runs:
        objective = run_objective(run)
        key = (str(run.parent.parent), objective, setting_key(objective, run_settings(run)))
        groups.setdefault(key, []).append(run)
    labels = _labels(list(groups))
    return [(label, members) for label, members in zip(labels, groups.values())]


def _labels(keys):
    """The objective, the options its table entry always shows (``DRW``, ``ccegamma=0.5``), and the settings in
    which groups of the same objective and data differ."""
    labels = []
    for place, objective, settings in keys:
        siblings = [dict(other) for p, o, other in keys if (p, o) == (place, objective)]
        mine = dict(settings)
        differing = [key for key in mine if any(other.get(key) != mine[key] for other in siblings)]
        entry = criterion.OBJECTIVES.get(objective)
        shown = [key for key in (entry.shown if entry else ()) if key in mine and key not in differing]
        extras = [_show_setting(key, json.loads(mine[key])) for key in shown]
        extras += [f"{key}={_show(json.loads(mine[key]))}" for key in sorted(differing)]
        if len({p for p, _, _ in keys}) > 1:
            extras.append(Path(place).name)
        labels.append(" ".join([objective] + [extra for extra in extras if extra]))
    return labels


def _show_setting(key, value):
    """A shown option in a label: a flag by its name when on (``DRW``), nothing when off; else ``key=value``."""
    if isinstance(value, bool):
        return key.upper() if value else ""
    return f"{key}={_show(value)}"


def _show(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def mean_std(values):
    """Mean and sample standard deviation (nan for one value) of the finite values."""
    finite = [value for value in values if not math.isnan(value)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def same_images(runs, saved):
    """Refuse (one line) runs whose saved predictions cover different images."""
    first = saved[0]
    for run, other in zip(runs[1:], saved[1:]):
        if other[0] != first[0] or not np.array_equal(other[1], first[1]) or not np.array_equal(other[2], first[2]):
            raise UserError(f"{runs[0]} and {run} were evaluated on different images ({first[0]}: {len(first[1])} "
                            f"images, {other[0]}: {len(other[1])}); compare runs evaluated on the same split")


def group_intervals(members, split=None):
    """95 % intervals (test images resampled) of the group's mean top-1 and balanced accuracy, or None."""
    saved = [load_predictions(run, split) for run in members]
    if any(entry is None for entry in saved):
        return None
    try:
        same_images(members, saved)
    except UserError:
        return None
    return stats.bootstrap_intervals(saved[0][2], [entry[3] for entry in saved])


def summarise(groups, split=None):
    """One row per group: label, n, split, (mean, std) per metric, 95 % intervals, minutes per run."""
    rows = []
    for label, members in groups:
        metrics = [run_metrics(run) for run in members]
        splits = sorted({m["split"] for m in metrics})
        rows.append({"label": label, "n": len(members), "split": "/".join(splits), "runs": members,
                     "minutes": mean_std([m["minutes"] for m in metrics])[0],
                     "intervals": group_intervals(members, split),
                     **{key: mean_std([m[key] for m in metrics]) for key, _ in METRICS}})
    return rows


def _interval_cells(row):
    intervals = row["intervals"]
    if intervals is None:
        return ["-", "-"]
    return [f"[{intervals[key][0]:.2f}, {intervals[key][1]:.2f}]" for key in ("acc", "balanced_acc")]


INTERVAL_TITLES = ("top-1 95% CI", "bal. acc 95% CI")


def format_cell(mean, std):
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def print_table(rows, file=None):
    width = max(9, *(len(row["label"]) for row in rows))
    cells = [[format_cell(*row[key]) for key, _ in METRICS] + _interval_cells(row) for row in rows]
    titles = [title for _, title in METRICS] + list(INTERVAL_TITLES)
    widths = [max(len(title), *(len(cell[i]) for cell in cells)) for i, title in enumerate(titles)]
    header = "  ".join(f"{title:>{w}}" for title, w in zip(titles, widths))
    print(f"{'objective':<{width}} {'n':>2} {'split':>10}  {header}  {'min/run':>7}  runs", file=file)
    for row, cell in zip(rows, cells):
        values = "  ".join(f"{value:>{w}}" for value, w in zip(cell, widths))
        folders = str(row["runs"][0]) + (f" (+{row['n'] - 1})" if row["n"] > 1 else "")
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        print(f"{row['label']:<{width}} {row['n']:>2} {row['split']:>10}  {values}  {minutes:>7}  {folders}", file=file)
    print("mean ± sample standard deviation over the n runs (seeds) of each row; accuracies in percent; "
          "95% CI: stratified bootstrap over the test images of the row's mean", file=file)


def markdown_table(rows):
    titles = [title for _, title in METRICS] + list(INTERVAL_TITLES)
    lines = ["| objective | n | split | " + " | ".join(titles) + " | min/run |",
             "|---|---|---|" + "---|" * len(titles) + "---|"]
    for row in rows:
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        cells = " | ".join([format_cell(*row[key]) for key, _ in METRICS] + _interval_cells(row))
        lines.append(f"| {row['label']} | {row['n']} | {row['split']} | {cells} | {minutes} |")
    return "\n".join(lines) + "\n"


def plot_curves(groups, path):
    """Mean validation top-1 per epoch of every group, one line each, into an svg."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # real text in the svg: smaller, searchable
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, members in groups:
        curves = [[float(row["acc"]) for row in read_csv(run / VALID_CSV)] for run in members]
        length = min(map(len, curves))
        mean = [statistics.fmean(curve[epoch] for curve in curves) for epoch in range(length)]
        name = f"{label} ({members[0].name})" if len(members) == 1 else f"{label} (mean of {len(members)})"
        axes.plot(range(1, length + 1), mean, label=name, linewidth=1.5)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    runs = [run for _, members in groups for run in members]
    axes.set_title(" / ".join(dict.fromkeys(f"{run.parent.parent.parent.name} on {run.parent.parent.name}" for run in runs)))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_svg(figure, path)
    plt.close(figure)


def paired_comparison(runs_a, runs_b, split=None, labels=None, file=None):
    """B minus A on the same images: balanced accuracy with a paired bootstrap interval, exact McNemar on top-1.

    ``runs_a`` and ``runs_b`` pair up one to one (one run each, or the seeds of two groups)."""
    saved = []
    for run in runs_a + runs_b:
        entry = load_predictions(run, split)
        if entry is None:
            raise UserError(f"{run} has no saved predictions; run 2_test.py on it first")
        saved.append(entry)
    same_images(runs_a + runs_b, saved)
    targets = saved[0][2]
    predictions_a, predictions_b = [entry[3] for entry in saved[:len(runs_a)]], [entry[3] for entry in saved[len(runs_a):]]
    label_a, label_b = labels or (_short(runs_a), _short(runs_b))
    print(f"\n{label_b} minus {label_a}, paired on the same {len(targets)} {saved[0][0]} images:", file=file)
    for run_a, run_b, a, b in zip(runs_a, runs_b, predictions_a, predictions_b):
        difference, interval = stats.paired_difference(targets, a, b)
        only_a, only_b, p_value = stats.mcnemar_exact(a == targets, b == targets)
        print(f"  {run_b.name} vs {run_a.name}: balanced acc {difference:+.2f} points, 95% CI "
              f"[{interval[0]:+.2f}, {interval[1]:+.2f}]; top-1: {only_b} images right only in B, {only_a} only in A, "
              f"exact McNemar p = {p_value:.3g}", file=file)
    if len(runs_a) > 1:
        difference, interval = stats.paired_difference(targets, predictions_a, predictions_b)
        per_pair = [stats.balanced_accuracy(targets, b) - stats.balanced_accuracy(targets, a)
                    for a, b in zip(predictions_a, predictions_b)]
        print(f"  mean over {len(runs_a)} pairs: balanced acc {difference:+.2f} points, 95% CI "
              f"[{interval[0]:+.2f}, {interval[1]:+.2f}] (test images resampled); across pairs "
              f"{statistics.stdev(per_pair):.2f} points standard deviation", file=file)
    return difference, interval


def _short(runs):
    return run_objective(runs[0]) if len(runs) > 1 else f"{run_objective(runs[0])} ({runs[0].name})"


def _paired_groups(groups):
    if len(groups) != 2:
        raise UserError(f"--paired compares two groups of runs; these runs form {len(groups)}: "
                        f"{', '.join(label for label, _ in groups)}")
    (label_a, first), (label_b, second) = groups
    seeds = [{run_settings(run).get("seed"): run for run in members} for members in (first, second)]
    common = [seed for seed in seeds[0] if seed in seeds[1]]
    if not common:
        raise UserError("--paired pairs runs by seed, and the two groups share no seed")
    return [seeds[0][seed] for seed in common], [seeds[1][seed] for seed in common], (label_a, label_b)


def main(args):
    runs = resolve_runs(args)
    groups = group_runs(runs)
    rows = summarise(groups, args.split)
    print_table(rows)
    if args.paired:
        runs_a, runs_b, labels = _paired_groups(groups)
        paired_comparison(runs_a, runs_b, args.split, labels)
    elif len(runs) == 2:
        if all(load_predictions(run, args.split) for run in runs):
            paired_comparison([runs[0]], [runs[1]], args.split)
        else:
            print("(no paired comparison: run 2_test.py on both runs to save their predictions)")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.markdown) as file:
            file.write(markdown_table(rows))
        print(f"wrote {args.markdown}")
    if args.plot:
        plot_curves(groups, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
