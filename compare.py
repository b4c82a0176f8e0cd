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
import difflib
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

import criterion
import stats
import train_args
from runs import (CHECKPOINTS, TRAIN_CSV, VALID_CSV, checked_metrics, find_run_dir, list_runs, load_predictions,
                  model_folder, read_csv, run_parent, run_settings)
from utils import ArgumentParser, UserError, atomic_write, name_argument, output_file, run_cli, save_svg

METRICS = (("acc", "top-1"), ("balanced_acc", "bal. acc"), ("macro_f1", "macro-F1"),
           ("many_acc", "many"), ("medium_acc", "medium"), ("few_acc", "few"))
# Arguments that never change what a run learns (paths, speed, bookkeeping) and the seed: not part of a group.
NOT_A_SETTING = {"seed", "resume", "data_dir", "logs_dir", "cache_mb", "disk_cache", "workers", "compile", "no_amp",
                 "skip_bad_images", "sync_bn", "many_shot", "few_shot", "tag"}


def get_args_parser():
    parser = ArgumentParser(description="Compare runs: one row per group of runs that differ only in seed.")
    parser.add_argument("--runs", nargs="+", default=[], help="run folders")
    parser.add_argument("--dataset", type=name_argument("--dataset"), help="with --model_index: pick runs by name")
    parser.add_argument("--model_index", type=int)
    parser.add_argument("--objectives", nargs="+", default=[], choices=list(criterion.OBJECTIVES),
                        help="objectives to pick (default with --dataset: all that have runs)")
    parser.add_argument("--datetime", default="latest",
                        help="run of each objective: latest (default), all, or YYYY-MM-DD-HH-MM-SS")
    parser.add_argument("--where", action="append", default=[], metavar="[OBJECTIVE:]KEY=VALUE",
                        help="keep only runs whose arguments have this value, e.g. mix=cutmix, weight_decay=0.005, "
                             "init_from=null, or CCE:ccegamma=1 for one objective's runs only (repeatable: every "
                             "key must match, and a key given twice matches either value, as in --where mix=null "
                             "--where mix=cutmix; a run older than a flag has its default)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[], metavar="SEED",
                        help="keep only runs with these seeds (e.g. the seeds every group has)")
    parser.add_argument("--logs_dir", default="logs")
    parser.add_argument("--plot", default=None, help="write the mean validation accuracy per epoch of every group to this svg")
    parser.add_argument("--markdown", default=None, help="also write the table to this markdown file")
    parser.add_argument("--paired", action="store_true",
                        help="compare two groups of seeds run by run (paired by seed): second group minus first")
    parser.add_argument("--split", choices=("test", "valid"), default=None,
                        help="split whose saved predictions to use (default: test, else valid)")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                        help="results of the best checkpoint (chosen on valid/) or of last.pth (2_test.py "
                             "--checkpoint last)")
    parser.add_argument("--select_on", choices=("valid",), default=None,
                        help="valid: rank the groups by the validation balanced accuracy of their checkpoints' "
                             "epochs (valid.csv) and report the chosen group's test numbers")
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
    runs = list(dict.fromkeys(runs))
    if args.seeds:
        runs = [run for run in runs if run_settings(run).get("seed") in args.seeds]
        if not runs:
            raise UserError(f"no run has seed {' or '.join(map(str, args.seeds))}")
    if args.where:
        alternatives = {}  # (objective, key) -> the values allowed: one key given twice is either value
        for objective, key, value in map(parse_condition, args.where):
            alternatives.setdefault((objective, key), []).append(value)
        runs = [run for run in runs if all(objective not in (None, run_objective(run))
                                           or any(_matches(run_settings(run), key, value) for value in values)
                                           for (objective, key), values in alternatives.items())]
        if not runs:
            raise UserError(f"no run has {' and '.join(args.where)}")
    return runs


def parse_condition(text):
    """``--where [OBJECTIVE:]KEY=VALUE``: the value read as JSON when it is (0.005, true, null), else as text; with
    an objective, the condition applies to that objective's runs only."""
    condition, equals, value = text.partition("=")
    objective, colon, key = condition.rpartition(":")
    if not equals or not key:
        raise UserError(f"--where takes [OBJECTIVE:]KEY=VALUE (a setting of config.json's args), got {text!r}")
    if colon and objective not in criterion.OBJECTIVES:
        raise UserError(f"--where {text}: {objective!r} is not an objective; choose one of {', '.join(criterion.OBJECTIVES)}")
    if key not in train_args.defaults():
        close = difflib.get_close_matches(key, list(train_args.defaults()), n=1)
        raise UserError(f"--where {text}: {key!r} is not a setting of a run" + (f" (did you mean {close[0]}?)" if close
                                                                               else " (1_train.py --help lists them)"))
    try:
        value = json.loads(value)
    except ValueError:
        pass
    return (objective if colon else None), key, value


def _matches(settings, key, value):
    """Whether a run's argument ``key`` is ``value`` (a run older than the flag has its default, ``run_settings``):
    equal and of the same kind, so ``seed=false`` does not match seed 0 nor ``drw=1`` match true."""
    saved = settings.get(key)
    return saved == value and isinstance(saved, bool) == isinstance(value, bool)

# ---------------------------------------------------------------- one run

def valid_rows(run):
    """The complete rows of a run's ``valid.csv``: a row cut short by a crash while it was written is dropped."""
    def complete(row):
        try:
            return None not in row.values() and all(row.get(key) for key in ("epoch", "acc")) \
                and math.isfinite(float(row["acc"]))
        except ValueError:
            return False
    return [row for row in read_csv(run / VALID_CSV) if complete(row)]


def checkpoint_row(run, checkpoint="best"):
    """The ``valid.csv`` row of the epoch a checkpoint holds: the best validation top-1 (the first of ties, as
    training keeps it) or the last; None before the first epoch ended."""
    rows = valid_rows(run)
    if not rows:
        return None
    return rows[-1] if checkpoint == "last" else max(rows, key=lambda row: float(row["acc"]))


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def run_metrics(run, checkpoint="best", split=None):
    """The metrics 2_test.py saved for ``split`` (default: test, else valid), else the checkpoint's validation
    epoch; plus training minutes."""
    train_rows = read_csv(run / TRAIN_CSV) if (run / TRAIN_CSV).is_file() else []
    minutes = sum(_number(row.get("time_s")) for row in train_rows) / 60 if train_rows else math.nan
    for name in [split] if split else ["test", "valid"]:
        metrics = checked_metrics(run, name, checkpoint)
        if metrics is not None:
            return {"split": name, "minutes": minutes, **{key: _number(metrics.get(key)) for key, _ in METRICS}}
    row = checkpoint_row(run, checkpoint)
    if row is None:
        return {"split": "-", "minutes": minutes, **{key: math.nan for key, _ in METRICS}}
    return {"split": f"{checkpoint} valid", "minutes": minutes, **{key: _number(row.get(key)) for key, _ in METRICS}}


def run_objective(run):
    """The objective, from ``logs/<Model>/<dataset>/<objective>/<time>``."""
    return run.parent.name


# ---------------------------------------------------------------- groups

def setting_key(objective, settings):
    """What makes two runs the same experiment: every setting except the seed and bookkeeping, and of the
    objective options only those the objective reads under these settings (``criterion.OBJECTIVES``)."""
    entry = criterion.OBJECTIVES.get(objective)
    unread = set(criterion.OPTIONS) - set(entry.reads(settings)) if entry else set()
    if "init_from" in settings:
        settings = {**settings, "init_from": _started_from(settings["init_from"])}
    return tuple(sorted((key, json.dumps(value, sort_keys=True)) for key, value in settings.items()
                        if key not in NOT_A_SETTING and key not in unread))


def _started_from(checkpoint):
    """What a run's ``--init_from`` says about it as an experiment: the objective and the settings of the run it
    started from, not its path (each seed starts from its own run, so the path would split every group, and its
    objective alone would merge stage 2 from two different first stages)."""
    if not checkpoint:
        return None
    start = Path(checkpoint).parent
    settings = run_settings(start) if start.is_dir() else {}
    settings = {key: value for key, value in settings.items() if key not in NOT_A_SETTING}
    if settings.get("init_from"):  # a third stage: what its start started from is named, not followed further
        settings["init_from"] = f"a {Path(settings['init_from']).parent.parent.name} run"
    return {"objective": start.parent.name, **settings}


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
        differing = [key for key in mine if any(key in other and other[key] != mine[key] for other in siblings)]
        entry = criterion.OBJECTIVES.get(objective)
        shown = [key for key in (entry.shown if entry else ()) if key in mine and key not in differing]
        extras = [_show_setting(key, json.loads(mine[key])) for key in shown]
        extras += [_show_difference(key, mine[key], [other.get(key) for other in siblings]) for key in sorted(differing)]
        if len({p for p, _, _ in keys}) > 1:
            extras.append(Path(place).name)
        labels.append(" ".join([objective] + [extra for extra in extras if extra]))
    return labels


def _show_difference(key, mine, others):
    """``key=value`` for a setting in which a group differs from its siblings; a start run (``--init_from``) is named
    by its objective and the settings in which it differs from the siblings' start runs."""
    value = json.loads(mine)
    if not isinstance(value, dict):
        return f"{key}={_show(value)}"
    starts = [start for start in (json.loads(other) for other in others if other) if isinstance(start, dict)]
    differing = [name for name in sorted(value) if name != "objective"
                 and any(start.get(name) != value[name] for start in starts)]
    details = ", ".join(f"{name}={_show(value[name])}" for name in differing)
    return f"{key}=a {value['objective']} run" + (f" ({details})" if details else "")


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


def group_intervals(members, split=None, checkpoint="best"):
    """95 % intervals of the group's mean top-1 and balanced accuracy from its saved predictions:
    ``{"images": ..., "seeds": ...}`` (``seeds`` None for one run), or None without predictions."""
    saved = [load_predictions(run, split, checkpoint) for run in members]
    if any(entry is None for entry in saved):
        return None
    try:
        same_images(members, saved)
    except UserError:
        return None
    targets, predictions = saved[0][2], [entry[3] for entry in saved]
    return {"images": stats.bootstrap_intervals(targets, predictions),
            "seeds": stats.seed_intervals(targets, predictions) if len(members) > 1 else None}


def summarise(groups, split=None, checkpoint="best"):
    """One row per group: label, n, split, (mean, std) per metric, 95 % intervals, minutes per run.  A row never
    mixes splits: runs not evaluated where most of the group was are named and left out."""
    rows = []
    for label, members in groups:
        metrics = [run_metrics(run, checkpoint, split) for run in members]
        splits = [m["split"] for m in metrics]
        common = max(dict.fromkeys(splits), key=lambda name: (splits.count(name), name == "test"))
        left_out = [str(run) for run, name in zip(members, splits) if name != common]
        if left_out:
            print(f"warning: {label}: {len(left_out)} run(s) not evaluated like the rest ({common}) are left out of "
                  f"its row; run 2_test.py on them: {', '.join(left_out)}", file=sys.stderr)
            members = [run for run, name in zip(members, splits) if name == common]
            metrics = [m for m in metrics if m["split"] == common]
        rows.append({"label": label, "n": len(members), "split": common, "runs": members,
                     "minutes": mean_std([m["minutes"] for m in metrics])[0],
                     "intervals": group_intervals(members, split, checkpoint),
                     **{key: mean_std([m[key] for m in metrics]) for key, _ in METRICS}})
    return rows


INTERVAL_TITLES = ("top-1 CI seeds+images", "top-1 CI images", "bal. acc CI seeds+images", "bal. acc CI images")
TABLE_NOTE = ("mean ± sample standard deviation over the n runs (seeds) of each row; accuracies in percent; 95% "
              "CIs of the row's mean: 'seeds+images' resamples the runs (seeds) and the test images (two-level "
              "bootstrap), 'images' the test images only, the trained runs held fixed; with n = 1 only the images "
              "can be resampled")


def _interval_cells(row):
    intervals = row["intervals"]
    cells = []
    for key in ("acc", "balanced_acc"):
        for kind in ("seeds", "images"):
            interval = intervals[kind][key] if intervals and intervals[kind] else None
            cells.append(f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ("n = 1" if intervals else "-"))
    return cells


def format_cell(mean, std):
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _columns(rows, valid_scores):
    """Titles and cells of the metric columns (the validation score first when groups were selected on it)."""
    titles = [title for _, title in METRICS] + list(INTERVAL_TITLES)
    cells = [[format_cell(*row[key]) for key, _ in METRICS] + _interval_cells(row) for row in rows]
    if valid_scores is not None:
        titles.insert(0, "valid bal. acc")
        for row, cell in zip(rows, cells):
            cell.insert(0, format_cell(valid_scores.get(row["label"], math.nan), math.nan))
    return titles, cells


def print_table(rows, valid_scores=None):
    width = max(9, *(len(row["label"]) for row in rows))
    titles, cells = _columns(rows, valid_scores)
    widths = [max(len(title), *(len(cell[i]) for cell in cells)) for i, title in enumerate(titles)]
    header = "  ".join(f"{title:>{w}}" for title, w in zip(titles, widths))
    print(f"{'objective':<{width}} {'n':>2} {'split':>10}  {header}  {'min/run':>7}  runs")
    for row, cell in zip(rows, cells):
        values = "  ".join(f"{value:>{w}}" for value, w in zip(cell, widths))
        folders = str(row["runs"][0]) + (f" (+{row['n'] - 1})" if row["n"] > 1 else "")
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        print(f"{row['label']:<{width}} {row['n']:>2} {row['split']:>10}  {values}  {minutes:>7}  {folders}")
    print(TABLE_NOTE)


def markdown_table(rows, valid_scores=None):
    titles, cells = _columns(rows, valid_scores)
    lines = ["| objective | n | split | " + " | ".join(titles) + " | min/run |",
             "|---|---|---|" + "---|" * len(titles) + "---|"]
    for row, cell in zip(rows, cells):
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        lines.append(f"| {row['label']} | {row['n']} | {row['split']} | {' | '.join(cell)} | {minutes} |")
    return "\n".join(lines) + "\n\n" + TABLE_NOTE + ".\n"


def select_on_valid(groups, checkpoint="best"):
    """Groups ranked by the mean over their runs of the validation balanced accuracy at the checkpoint's epoch,
    read from each run's ``valid.csv`` and nothing else (no test split): ``{label: score}``, best first."""
    scores = {}
    for label, members in groups:
        rows = [checkpoint_row(run, checkpoint) for run in members]
        unscored = [str(run) for run, row in zip(members, rows) if row is None or not math.isfinite(_number(
            row.get("balanced_acc")))]
        if unscored:  # leaving them out would rank the group on its other seeds, or drop it, without a word
            raise UserError(f"--select_on valid: {len(unscored)} run(s) of {label} have no validation balanced accuracy "
                            f"in valid.csv (a run that stopped before its first epoch, or a damaged log): "
                            f"{', '.join(unscored)}; leave them out with --seeds or --where, or delete them")
        scores[label] = mean_std([float(row["balanced_acc"]) for row in rows])[0]
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def report_selection(scores, rows):
    if not scores:
        raise UserError("--select_on valid: no run has a validation balanced accuracy in its valid.csv")
    chosen = next(iter(scores))
    row = next(row for row in rows if row["label"] == chosen)
    intervals = row["intervals"] or {}
    interval = (intervals.get("seeds") or intervals.get("images") or {}).get("balanced_acc")
    kind = "seeds+images" if intervals.get("seeds") else "images"
    print(f"\nselected on valid/ (mean over seeds of the balanced accuracy of each run's checkpoint epoch in "
          f"valid.csv): {chosen}")
    print("  ranking: " + ", ".join(f"{label} {score:.2f}" for label, score in scores.items()))
    print(f"  its {row['split']} numbers: balanced acc {format_cell(*row['balanced_acc'])} over {row['n']} run(s)"
          + (f", 95% CI ({kind}) [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""))


def plot_curves(groups, path):
    """Mean validation top-1 per epoch of every group, one line each, into an svg."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # real text in the svg: smaller, searchable
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, members in groups:
        curves = [[float(row["acc"]) for row in valid_rows(run)] for run in members]
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
    save_svg(figure, path)
    plt.close(figure)


def paired_comparison(runs_a, runs_b, split=None, labels=None, checkpoint="best"):
    """B minus A on the same images, run by run: balanced accuracy with a paired bootstrap interval over the
    images and the exact McNemar test on top-1; over several seed pairs also the mean difference with intervals
    that include the seed spread and the sign-flip test (``stats.paired_over_seeds``).

    ``runs_a`` and ``runs_b`` pair up one to one (one run each, or the seeds of two groups)."""
    saved = []
    for run in runs_a + runs_b:
        entry = load_predictions(run, split, checkpoint)
        if entry is None:
            raise UserError(f"{run} has no saved predictions; run 2_test.py on it first")
        saved.append(entry)
    same_images(runs_a + runs_b, saved)
    targets = saved[0][2]
    predictions_a, predictions_b = [entry[3] for entry in saved[:len(runs_a)]], [entry[3] for entry in saved[len(runs_a):]]
    label_a, label_b = labels or (_short(runs_a), _short(runs_b))
    print(f"\n{label_b} minus {label_a}, paired on the same {len(targets)} {saved[0][0]} images:")
    for run_a, run_b, a, b in zip(runs_a, runs_b, predictions_a, predictions_b):
        difference, interval = stats.paired_difference(targets, a, b)
        only_a, only_b, p_value = stats.mcnemar_exact(a == targets, b == targets)
        print(f"  {run_b.name} vs {run_a.name}: balanced acc {difference:+.2f} points, 95% CI "
              f"[{interval[0]:+.2f}, {interval[1]:+.2f}] (test images); top-1: {only_b} images right only in B, "
              f"{only_a} only in A, exact McNemar p = {p_value:.3g}")
    if len(runs_a) == 1:
        print("  (these two trained networks on these images; for a claim about the methods, compare groups of "
              "seeds with --paired)")
        return stats.paired_difference(targets, predictions_a[0], predictions_b[0])
    result = stats.paired_over_seeds(targets, predictions_a, predictions_b)
    pairs = len(runs_a)
    print(f"  mean over {pairs} seed pairs: balanced acc {result['mean']:+.2f} points (per pair "
          f"{', '.join(f'{d:+.2f}' for d in result['differences'])}; standard deviation "
          f"{statistics.stdev(result['differences']):.2f})")
    for key, what in (("seeds_and_images", "seeds and test images resampled (two-level bootstrap)"),
                      ("t", f"Student's t over the {pairs} per-pair differences"),
                      ("images", "test images only, the trained runs held fixed")):
        low, high = result[key]
        print(f"    95% CI, {what}: [{low:+.2f}, {high:+.2f}]")
    smallest = stats.smallest_sign_flip_p(pairs)
    limit = (f"; {pairs} pairs cannot reach p < 0.05 (the smallest possible p is {smallest:.3g}): "
             f"{stats.pairs_needed(0.05)} pairs can" if smallest >= 0.05 else "")
    print(f"    exact sign-flip test over the {pairs} pairs: p = {result['p_sign_flip']:.3g}{limit}")
    seed_aware = (result["seeds_and_images"], result["t"])
    if all(low > 0 for low, _ in seed_aware) or all(high < 0 for _, high in seed_aware):
        print(f"  -> {label_b} is {'better' if result['mean'] > 0 else 'worse'} than {label_a} here: both "
              "intervals that include the seed spread exclude 0")
    else:
        print(f"  -> no difference shown between {label_b} and {label_a}: an interval that includes the seed "
              "spread contains 0")
    return result


def _short(runs):
    return run_objective(runs[0]) if len(runs) > 1 else f"{run_objective(runs[0])} ({runs[0].name})"


def _paired_groups(groups):
    """The runs of two groups paired by seed; two runs of one group with the same seed are refused, and runs
    without a partner are named."""
    if len(groups) != 2:
        raise UserError(f"--paired compares two groups of runs; these runs form {len(groups)}: "
                        f"{', '.join(label for label, _ in groups)}")
    seeds = []
    for label, members in groups:
        by_seed = {}
        for run in members:
            seed = run_settings(run).get("seed")
            if seed in by_seed:
                raise UserError(f"--paired pairs runs by seed, and {label} has two runs with seed {seed}: "
                                f"{by_seed[seed]} and {run}; name the runs to compare with --runs")
            by_seed[seed] = run
        seeds.append(by_seed)
    common = [seed for seed in seeds[0] if seed in seeds[1]]
    if not common:
        raise UserError("--paired pairs runs by seed, and the two groups share no seed")
    for (label, _), by_seed in zip(groups, seeds):
        alone = [str(run) for seed, run in by_seed.items() if seed not in common]
        if alone:
            print(f"note: {len(alone)} run(s) of {label} have no partner with the same seed and are left out of the "
                  f"paired comparison: {', '.join(alone)}")
    (label_a, _), (label_b, _) = groups
    return [seeds[0][seed] for seed in common], [seeds[1][seed] for seed in common], (label_a, label_b)


def main(args):
    for flag, value in (("--markdown", args.markdown), ("--plot", args.plot)):
        if value is not None:
            output_file(value, flag)  # a bad output path is refused before any work
    runs = resolve_runs(args)
    groups = group_runs(runs)
    rows = summarise(groups, args.split, args.checkpoint)
    valid_scores = select_on_valid(groups, args.checkpoint) if args.select_on else None
    print_table(rows, valid_scores)
    if valid_scores is not None:
        report_selection(valid_scores, rows)
    if args.paired:
        runs_a, runs_b, labels = _paired_groups(groups)
        paired_comparison(runs_a, runs_b, args.split, labels, args.checkpoint)
    elif len(runs) == 2:
        if all(load_predictions(run, args.split, args.checkpoint) for run in runs):
            paired_comparison([runs[0]], [runs[1]], args.split, checkpoint=args.checkpoint)
        else:
            print("(no paired comparison: run 2_test.py on both runs to save their predictions)")
    if args.markdown:
        with atomic_write(args.markdown) as file:
            file.write(markdown_table(rows, valid_scores))
        print(f"wrote {args.markdown}")
    if args.plot:
        plot_curves(groups, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
