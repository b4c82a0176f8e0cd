"""Training runs as results: finding them, grouping the runs that differ only in their seed, each group's row
(mean and standard deviation over seeds, intervals), pairing two groups by seed, selecting on ``valid/``, the
test-prior shift, and the validation curves.  ``compare.py`` prints them, ``report.py`` writes them into a
page: one source for every number both show.

Each run is read from its folder: ``test_metrics.json`` (or ``valid_metrics.json``) written by 2_test.py,
``valid.csv`` and ``train.csv`` written by 1_train.py, and the run's arguments (``config.json``, or the
checkpoint of runs older than that file).  Intervals and paired tests need ``<split>_predictions.npz``.
"""
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

import criterion
import stats
from b_models.foundation import spec_argument
from get_model import chosen_model
from runs import (CHECKPOINTS, CONFIG, TRAIN_CSV, VALID_CSV, checked_metrics, find_runs, load_predictions, read_csv,
                  read_metrics, run_facts, run_objective, run_settings)
from utils import UserError, name_argument, output_file

METRICS = (("acc", "top-1"), ("balanced_acc", "bal. acc"), ("macro_f1", "macro-F1"),
           ("many_acc", "many"), ("medium_acc", "medium"), ("few_acc", "few"))
# Arguments that never change what a run learns (paths, speed, bookkeeping) and the seed: not part of a group.
NOT_A_SETTING = {"seed", "resume", "data_dir", "logs_dir", "cache_mb", "disk_cache", "workers", "compile", "no_amp",
                 "skip_bad_images", "sync_bn", "many_shot", "few_shot", "tag"}



def add_selection_arguments(parser):
    """The flags that choose runs and their results (``compare.py``, ``report.py``)."""
    parser.add_argument("--runs", nargs="+", default=[], help="run folders")
    parser.add_argument("--dataset", type=name_argument("--dataset"), help="with --model_index: pick runs by name")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model_index", type=int)
    model.add_argument("--model", type=spec_argument, metavar="timm:NAME|clip:NAME",
                       help="a backbone by name, instead of --model_index")
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
    parser.add_argument("--split", choices=("test", "valid"), default=None,
                        help="split whose saved predictions to use (default: test, else valid)")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                        help="results of the best checkpoint (chosen on valid/) or of last.pth (2_test.py "
                             "--checkpoint last)")


def result_output(text, flag):
    """An output path of compare.py or report.py (``utils.output_file``), never inside a run folder or a record:
    a table or a page written there would replace, or sit among, the files the run's numbers come from."""
    path = output_file(text, flag)
    if (path.resolve().parent / CONFIG).is_file():
        raise UserError(f"{flag} {path} would be written into the run folder {path.parent}, among the files its "
                        "numbers come from; write it elsewhere")
    return path


def selected_runs(args):
    """``find_runs`` with the flags of ``add_selection_arguments``."""
    return find_runs(args.logs_dir, args.runs, args.dataset, chosen_model(args), args.objectives, args.datetime,
                     args.seeds, args.where)


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


def run_metrics(run, checkpoint="best", split=None, variant=None):
    """The metrics 2_test.py saved for ``split`` (default: test, else valid), else the checkpoint's validation
    epoch; plus training minutes.  With ``variant`` (``posthoc``, ``tau_norm``): the metrics after that test-time
    adjustment, or none."""
    train_rows = read_csv(run / TRAIN_CSV) if (run / TRAIN_CSV).is_file() else []
    minutes = sum(_number(row.get("time_s")) for row in train_rows) / 60 if train_rows else math.nan
    for name in [split] if split else ["test", "valid"]:
        metrics = checked_metrics(run, name, checkpoint, variant)
        if metrics is not None:
            return {"split": name, "minutes": minutes, **{key: _number(metrics.get(key)) for key, _ in METRICS}}
    row = checkpoint_row(run, checkpoint) if variant is None else None
    if row is None:
        return {"split": "-", "minutes": minutes, **{key: math.nan for key, _ in METRICS}}
    return {"split": f"{checkpoint} valid", "minutes": minutes, **{key: _number(row.get(key)) for key, _ in METRICS}}


# ---------------------------------------------------------------- groups

def setting_key(objective, settings, root=None):
    """What makes two runs the same experiment: every setting except the seed and bookkeeping, and of the
    objective options only those the objective reads under these settings (``criterion.OBJECTIVES``).  ``root``:
    the folder the run lies under (logs/, results/), where its first stage is looked for."""
    entry = criterion.OBJECTIVES.get(objective)
    unread = set(criterion.OPTIONS) - set(entry.reads(settings)) if entry else set()
    if "init_from" in settings:
        settings = {**settings, "init_from": _started_from(settings["init_from"], root)}
    return tuple(sorted((key, json.dumps(value, sort_keys=True)) for key, value in settings.items()
                        if key not in NOT_A_SETTING and key not in unread))


def _started_from(checkpoint, root=None):
    """What a run's ``--init_from`` says about it as an experiment: the objective and the settings of the run it
    started from, not its path (each seed starts from its own run, so the path would split every group, and its
    objective alone would merge stage 2 from two different first stages).  The start is looked for at the same
    place under ``root`` first, so a record finds its first stage's record."""
    if not checkpoint:
        return None
    start = Path(checkpoint).parent
    if root is not None and len(start.parts) >= 4 and (Path(root).joinpath(*start.parts[-4:])).is_dir():
        start = Path(root).joinpath(*start.parts[-4:])
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
        key = (str(run.parent.parent), objective, setting_key(objective, run_settings(run), run.parents[3]))
        groups.setdefault(key, []).append(run)
    labels = _labels(list(groups))
    return [(label, members) for label, members in zip(labels, groups.values())]


MIXES = {"mixup": "mixup", "cutmix": "CutMix", "remix": "Remix", "cmo": "CMO"}
POLICIES = {"autoaugment": "AutoAugment", "randaugment": "RandAugment", "trivialaugment": "TrivialAugment"}


def method_words(settings):
    """The published methods a group's settings make, by name (``cRT``, ``LWS``, ``weight balancing stage 2``,
    ``mixup``, ``SAM``, ``RandAugment``, ``BCL``, ...), so a label says ``ERM cRT`` rather than every flag a second
    stage sets."""
    value = {key: json.loads(text) for key, text in settings.items()}
    words = []
    if value.get("init_from"):
        if value.get("lws"):
            words.append("LWS")
        elif value.get("maxnorm"):
            words.append("weight balancing stage 2")
        elif value.get("reinit_head") and value.get("freeze_backbone"):
            words.append("cRT")
        else:
            words.append("second stage")
    if value.get("mix"):
        words.append(MIXES.get(value["mix"], value["mix"]))
    if value.get("augment") in POLICIES:
        words.append(POLICIES[value["augment"]])
    if value.get("sam_rho"):
        words.append("SAM")
    if value.get("method"):
        words.append(str(value["method"]).upper())
    return words


def _labels(keys):
    """The objective, the options its table entry always shows (``DRW``, ``ccegamma=0.5``), the methods its
    settings make (``method_words``), and the settings in which groups of the same objective, methods and data
    differ."""
    labels = []
    for place, objective, settings in keys:
        mine = dict(settings)
        words = method_words(mine)
        siblings = [dict(other) for p, o, other in keys
                    if (p, o) == (place, objective) and method_words(dict(other)) == words]
        differing = [key for key in mine if any(key in other and other[key] != mine[key] for other in siblings)]
        entry = criterion.OBJECTIVES.get(objective)
        shown = [key for key in (entry.shown if entry else ()) if key in mine and key not in differing]
        extras = [_show_setting(key, json.loads(mine[key])) for key in shown]
        extras += [_show_difference(key, mine[key], [other.get(key) for other in siblings]) for key in sorted(differing)]
        if len({p for p, _, _ in keys}) > 1:
            extras.append(Path(place).name)
        labels.append(" ".join([objective, *words, *(extra for extra in extras if extra)]))
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


def saved_predictions(members, split=None, checkpoint="best", variant=None):
    """``(split, targets, [predicted classes per run])`` of runs evaluated on the same images, or None when one has
    no saved predictions or they cover different images."""
    saved = [load_predictions(run, split, checkpoint, variant) for run in members]
    if any(entry is None for entry in saved):
        return None
    try:
        same_images(members, saved)
    except UserError:
        return None
    return saved[0][0], saved[0][2], [entry[3] for entry in saved]


def group_intervals(members, split=None, checkpoint="best", prior=None, variant=None):
    """95 % intervals of the group's mean top-1 and balanced accuracy (and, with a test ``prior``, of its accuracy
    under that prior, key ``weighted``) from its saved predictions: ``{"images": ..., "seeds": ...}`` (``seeds``
    None for one run, ``stats.seed_intervals``), or None without predictions."""
    saved = saved_predictions(members, split, checkpoint, variant)
    if saved is None:
        return None
    _, targets, predictions = saved
    images = stats.bootstrap_intervals(targets, predictions)
    weighting = None
    if prior is not None:
        weighting = prior_on(targets, prior)
        images["weighted"] = stats.images_interval(targets, np.array([targets == run for run in predictions]),
                                                   weighting)
    return {"images": images, "seeds": stats.seed_intervals(targets, predictions, weighting=weighting)}


def prior_on(targets, prior):
    """A test prior's weights of the classes present in ``targets`` (``stats.present_prior``), or a ``UserError``
    when it puts mass on a class with no test image."""
    try:
        return stats.present_prior(targets, prior)
    except ValueError as error:
        raise UserError(str(error)) from None


def prior_accuracies(members, prior, split=None, checkpoint="best", variant=None):
    """Each run's top-1 (%) under a test class ``prior`` (importance-weighted), from its saved predictions."""
    saved = saved_predictions(members, split, checkpoint, variant)
    if saved is None:
        return [math.nan] * len(members)
    _, targets, predictions = saved
    weighting = prior_on(targets, prior)
    return stats.weighted_accuracy(targets, np.array([targets == run for run in predictions]), weighting).tolist()


def class_counts_of(run):
    """The training class counts a run recorded (its best checkpoint, or its record, holds them), or a
    ``UserError``."""
    counts = run_facts(run).get("class_counts")
    if not counts:
        raise UserError(f"{run} records no training class counts, which a test prior needs")
    return counts


def summarise(groups, split=None, checkpoint="best", test_prior=None, variant=None):
    """One row per group: label, n, split, (mean, std) per metric, 95 % intervals, minutes per run; with
    ``test_prior`` (a name of ``stats.test_prior``) also ``prior_acc``, the top-1 under that prior; with
    ``variant`` the numbers after that test-time adjustment of the runs.  A row never mixes splits: runs not
    evaluated where most of the group was are named and left out."""
    rows = []
    for label, members in groups:
        metrics = [run_metrics(run, checkpoint, split, variant) for run in members]
        splits = [m["split"] for m in metrics]
        common = max(dict.fromkeys(splits), key=lambda name: (splits.count(name), name == "test"))
        left_out = [str(run) for run, name in zip(members, splits) if name != common]
        if left_out:
            print(f"warning: {label}: {len(left_out)} run(s) not evaluated like the rest ({common}) are left out of "
                  f"its row; run 2_test.py on them: {', '.join(left_out)}", file=sys.stderr)
            members = [run for run, name in zip(members, splits) if name == common]
            metrics = [m for m in metrics if m["split"] == common]
        prior = stats.test_prior(test_prior, class_counts_of(members[0])) if test_prior else None
        row = {"label": label, "n": len(members), "split": common, "runs": members,
               "minutes": mean_std([m["minutes"] for m in metrics])[0],
               "intervals": group_intervals(members, split, checkpoint, prior, variant),
               **{key: mean_std([m[key] for m in metrics]) for key, _ in METRICS}}
        if prior is not None:
            row["prior_acc"] = mean_std(prior_accuracies(members, prior, split, checkpoint, variant))
        rows.append(row)
    return rows


def prior_shift(groups, split=None, checkpoint="best"):
    """``{label: {prior: {"acc": mean over the group's runs, "std": ...}}}`` for SADE's eleven test priors."""
    shifted = {}
    for label, members in groups:
        counts = class_counts_of(members[0])
        shifted[label] = {}
        for name in stats.SHIFTED_PRIORS:
            mean, std = mean_std(prior_accuracies(members, stats.test_prior(name, counts), split, checkpoint))
            shifted[label][name] = {"acc": mean, "std": std}
    return shifted


INTERVAL_TITLES = ("top-1 CI seeds+images", "top-1 CI images", "bal. acc CI seeds+images", "bal. acc CI images")
TABLE_NOTE = ("mean ± sample standard deviation over the n runs (seeds) of each row; accuracies in percent; 95% "
              "CIs of the row's mean: 'seeds+images' is Student's t over the seeds widened by the test images' "
              "variance (stats.mean_interval; its coverage is simulated in docs/evaluation.md), 'images' resamples "
              "the test images only, the trained runs held fixed; with n = 1 only the images can be resampled")


def format_cell(mean, std):
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _interval(interval):
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def interval_cells(row, keys=("acc", "balanced_acc")):
    intervals = row["intervals"]
    cells = []
    for key in keys:
        for kind in ("seeds", "images"):
            interval = intervals[kind][key] if intervals and intervals[kind] else None
            cells.append(_interval(interval) if interval else ("n = 1" if intervals else "-"))
    return cells


def table_columns(rows, valid_scores=None, test_prior=None):
    """Titles and cells of a table's metric columns, one list per row: the metrics, their intervals, the top-1
    under a test prior when asked, and the validation score first when groups were selected on it."""
    titles = [title for _, title in METRICS] + list(INTERVAL_TITLES)
    cells = [[format_cell(*row[key]) for key, _ in METRICS] + interval_cells(row) for row in rows]
    if test_prior:
        titles += [f"top-1 under {test_prior}", f"{test_prior} CI seeds+images", f"{test_prior} CI images"]
        for row, cell in zip(rows, cells):
            cell += [format_cell(*row["prior_acc"]), *interval_cells(row, ("weighted",))]
    if valid_scores is not None:
        titles.insert(0, "valid bal. acc")
        for row, cell in zip(rows, cells):
            cell.insert(0, format_cell(valid_scores.get(row["label"], math.nan), math.nan))
    return titles, cells


def select_on_valid(groups, checkpoint="best", variants=None):
    """Groups ranked by the mean over their runs of the validation balanced accuracy at the checkpoint's epoch,
    read from each run's ``valid.csv`` and nothing else (no test split): ``{label: score}``, best first.  A group
    named in ``variants`` (label -> ``posthoc`` or ``tau_norm``) is scored by the validation balanced accuracy at
    the adjustment 2_test.py chose on valid/."""
    scores = {}
    for label, members in groups:
        variant = (variants or {}).get(label)
        rows = [checkpoint_row(run, checkpoint) if variant is None else _variant_valid(run, checkpoint, variant)
                for run in members]
        unscored = [str(run) for run, row in zip(members, rows) if row is None or not math.isfinite(_number(
            row.get("balanced_acc")))]
        if unscored:  # leaving them out would rank the group on its other seeds, or drop it, without a word
            raise UserError(f"--select_on valid: {len(unscored)} run(s) of {label} have no validation balanced accuracy "
                            f"in valid.csv (a run that stopped before its first epoch, or a damaged log): "
                            f"{', '.join(unscored)}; leave them out with --seeds or --where, or delete them")
        scores[label] = mean_std([float(row["balanced_acc"]) for row in rows])[0]
    # valid.csv keeps 6 decimals, 2_test.py's JSON all of them: rank on 4, so a tie stays a tie and the group seen
    # first (a method before its test-time adjustment) keeps its place.
    return dict(sorted(scores.items(), key=lambda item: -round(item[1], 4)))


def _variant_valid(run, checkpoint, variant):
    """A test-time adjustment's validation score (2_test.py records it when it chose the adjustment on valid/)."""
    section = (read_metrics(run, "test", checkpoint) or {}).get(variant) or {}
    score = section.get("valid_balanced_acc")
    return None if score is None else {"balanced_acc": score}


# ---------------------------------------------------------------- a study's verdict

VARIANTS = {"posthoc": "post-hoc adjustment", "tau_norm": "tau-norm"}


def variant_groups(groups, checkpoint="best"):
    """``[(label, members, variant)]``: each group's test-time adjustments that 2_test.py ran on every one of its
    runs (post-hoc adjustment, tau-normalisation), as groups of their own.  A post-hoc adjustment that valid/ set to
    tau 0 on every run is the group itself, and is left out (tau-normalisation at 0 still drops the bias)."""
    found = []
    for label, members in groups:
        for variant, name in VARIANTS.items():
            if not all(load_predictions(run, "test", checkpoint, variant) is not None for run in members):
                continue
            taus = [((read_metrics(run, "test", checkpoint) or {}).get(variant) or {}).get("tau") for run in members]
            if variant == "posthoc" and all(tau == 0 for tau in taus):
                continue
            found.append((f"{label} + {name}", members, variant))
    return found


def gather(groups, checkpoint="best", holm=True):
    """What a study concludes (report.py shows it): the rows of the groups and of their test-time adjustments, the
    scores on valid/ and the group they choose, the chosen group paired by seed with every other (their verdicts
    held together by Holm's correction, ``hold_together``), and the runs whose seed diverged."""
    variants = variant_groups(groups, checkpoint)
    rows = summarise(groups, checkpoint=checkpoint)
    for label, members, variant in variants:
        rows += summarise([(label, members)], checkpoint=checkpoint, variant=variant)
    every = list(groups) + [(label, members) for label, members, _ in variants]
    kinds = {label: variant for label, _, variant in variants}
    scores = select_on_valid(every, checkpoint, kinds)
    chosen = next(iter(scores))
    by_label = dict(every)
    pairs = []
    if len(by_label[chosen]) > 1:
        for label, members in every:
            if label == chosen:
                continue
            try:
                runs_a, runs_b, names, _ = pair_groups([(label, members), (chosen, by_label[chosen])])
            except UserError:
                continue  # no common seed: no pair
            if len(runs_a) > 1:
                pairs.append(compare_pairs(runs_a, runs_b, labels=names, checkpoint=checkpoint,
                                           variants=(kinds.get(label), kinds.get(chosen))))
    hold_together(pairs, holm=holm, others=unshown_p_values(every, chosen, checkpoint, kinds) if holm else ())
    return {"rows": rows, "scores": scores, "chosen": chosen, "pairs": pairs, "groups": every, "kinds": kinds,
            "diverging": diverging_runs(groups, checkpoint)}


def validation_curves(groups):
    """``{label: [each run's validation top-1 per epoch]}`` of every group (a single run named by its folder)."""
    curves = {}
    for label, members in groups:
        name = f"{label} ({members[0].name})" if len(members) == 1 else f"{label} (mean of {len(members)})"
        curves[name] = [[float(row["acc"]) for row in valid_rows(run)] for run in members]
    return curves


def curves_title(groups):
    runs = [run for _, members in groups for run in members]
    return " / ".join(dict.fromkeys(f"{run.parent.parent.parent.name} on {run.parent.parent.name}" for run in runs))


def _short(runs):
    return run_objective(runs[0]) if len(runs) > 1 else f"{run_objective(runs[0])} ({runs[0].name})"


def pair_groups(groups):
    """The runs of two groups paired by seed: ``(runs_a, runs_b, (label_a, label_b), notes)``; two runs of one group
    with the same seed are refused, and runs without a partner are named in ``notes``."""
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
    notes = []
    for (label, _), by_seed in zip(groups, seeds):
        alone = [str(run) for seed, run in by_seed.items() if seed not in common]
        if alone:
            notes.append(f"{len(alone)} run(s) of {label} have no partner with the same seed and are left out of the "
                         f"paired comparison: {', '.join(alone)}")
    (label_a, _), (label_b, _) = groups
    return [seeds[0][seed] for seed in common], [seeds[1][seed] for seed in common], (label_a, label_b), notes


def compare_pairs(runs_a, runs_b, split=None, labels=None, checkpoint="best", test_prior=None, variants=(None, None)):
    """B minus A on the same images: per pair of runs, the balanced-accuracy difference with a paired bootstrap
    interval over the images and the exact McNemar test on top-1; over several seed pairs also
    ``stats.paired_over_seeds`` (intervals with the seed spread, sign-flip test, smallest p, seeds needed) and the
    verdict.  With ``test_prior`` the accuracy compared is the top-1 under that prior; ``variants`` names a test-time
    adjustment of A's or B's runs (``posthoc``, ``tau_norm``)."""
    saved = []
    for run, variant in [(run, variants[0]) for run in runs_a] + [(run, variants[1]) for run in runs_b]:
        entry = load_predictions(run, split, checkpoint, variant)
        if entry is None:
            raise UserError(f"{run} has no saved predictions; run 2_test.py on it first")
        saved.append(entry)
    same_images(runs_a + runs_b, saved)
    targets = saved[0][2]
    predictions_a, predictions_b = [entry[3] for entry in saved[:len(runs_a)]], [entry[3] for entry in saved[len(runs_a):]]
    weighting = "balanced"
    if test_prior:
        weighting = prior_on(targets, stats.test_prior(test_prior, class_counts_of(runs_a[0])))
    label_a, label_b = labels or (_short(runs_a), _short(runs_b))
    result = {"label_a": label_a, "label_b": label_b, "split": saved[0][0], "images": len(targets),
              "metric": f"top-1 under {test_prior}" if test_prior else "balanced acc", "runs": []}
    for run_a, run_b, a, b in zip(runs_a, runs_b, predictions_a, predictions_b):
        difference, interval = stats.paired_difference(targets, a, b)
        only_a, only_b, p_value = stats.mcnemar_exact(a == targets, b == targets)
        result["runs"].append({"a": run_a, "b": run_b, "difference": difference, "interval": interval,
                               "only_a": only_a, "only_b": only_b, "mcnemar_p": p_value})
    if len(runs_a) > 1:
        result["seeds"] = stats.paired_over_seeds(targets, predictions_a, predictions_b, weighting=weighting)
        hold_together([result], holm=False)  # a family of one until a table or page holds several together
    return result


def verdict(paired, alpha=0.05):
    """``better``, ``worse`` or ``no difference shown``: better or worse only when the verdict rule's p-value
    (``stats.verdict_p``) is below ``alpha``, that is when both intervals that include the seed spread (seeds and
    images; Student's t over the pairs) exclude 0 at level ``1 - alpha``."""
    if paired["p_verdict"] >= alpha:
        return "no difference shown"
    return "better" if paired["mean"] > 0 else "worse"


def hold_together(pairs, holm=True, alpha=0.05, others=()):
    """The verdicts of the paired comparisons one table or page shows, as one family: with ``holm``, Holm's
    correction over the comparisons with seed pairs and the p-values of the family's comparisons not shown,
    ``others`` (``stats.holm``: the chance of calling any true null stays at most ``alpha``), else each at
    ``alpha``.  Each such pair gets its ``verdict`` and ``family`` (size, correction, the level it is held to), and
    the seeds needed at the level that would make the family call it (``needed_at``): its own level when called,
    else Holm's strictest, ``alpha`` over the family's size, which calls it whatever the others do."""
    judged = [pair for pair in pairs if "seeds" in pair]
    p_values = [pair["seeds"]["p_verdict"] for pair in judged] + list(others)
    levels, called = stats.holm(p_values, alpha) if holm else ([alpha] * len(p_values), [p < alpha for p in p_values])
    correction = "Holm" if holm and len(p_values) > 1 else None
    for pair, level, call in zip(judged, levels, called):
        paired = pair["seeds"]
        pair["verdict"] = verdict(paired, level) if call else "no difference shown"
        pair["family"] = {"size": len(p_values), "shown": len(judged), "correction": correction, "level": level,
                          "alpha": alpha, "stopped": not call and paired["p_verdict"] < level}  # Holm stopped before
        paired["needed_at"] = needed_at = level if call or not correction else alpha / len(p_values)
        paired["seeds_needed"] = stats.seeds_needed(paired["differences"], paired["image_var"], 1 - needed_at)
    return pairs


def unshown_p_values(groups, chosen, checkpoint="best", kinds=None):
    """The verdict-rule p-value (``stats.verdict_p``) of every pair of ``groups`` paired by seed (at least two pairs,
    on the same images) that leaves out the ``chosen`` one: valid/ chose it among them all, so its comparisons with
    the others are a selection from every pair, and only Holm over every pair keeps the family-wise error at 5 %
    (bench/coverage.py)."""
    by_seed = {}
    for label, members in groups:
        saved = saved_predictions(members, None, checkpoint, (kinds or {}).get(label))
        if saved is not None and label != chosen:
            by_seed[label] = (saved[1], {run_settings(run).get("seed"): run_predictions
                                         for run, run_predictions in zip(members, saved[2])})
    p_values = []
    for (targets_a, runs_a), (targets_b, runs_b) in itertools.combinations(by_seed.values(), 2):
        common = [seed for seed in runs_a if seed in runs_b]
        if len(common) > 1 and np.array_equal(targets_a, targets_b):
            differences, image_var = stats.paired_differences(targets_a, [runs_a[seed] for seed in common],
                                                              [runs_b[seed] for seed in common])
            p_values.append(stats.verdict_p(differences, image_var))
    return p_values


def family_words(pair):
    """How a verdict was held: nothing for a comparison alone; else the family's size and its correction."""
    family = pair.get("family")
    if not family or family["size"] == 1:
        return ""
    if family["correction"]:
        among = "shown" if family["size"] == family["shown"] else f"of the family ({family['shown']} shown)"
        return (f"Holm's correction over the {family['size']} comparisons {among}: this one held to p < "
                f"{family['level']:.2g}")
    return (f"one of {family['size']} comparisons shown, each at p < {family['alpha']:g}, not corrected for the "
            "family")


def needed_cell(paired):
    """The seeds needed as a table cell: a number, ``> 1000``, or ``more test images, not seeds``."""
    needed = paired["seeds_needed"]
    if needed == math.inf:
        return "more test images, not seeds"
    return "> 1000" if needed is None else str(needed)


# ---------------------------------------------------------------- a seed that diverged

def diverging_runs(groups, checkpoint="best"):
    """Runs whose validation top-1 (their checkpoint's epoch in ``valid.csv``) lies far from their group's median
    (``stats.diverging``: more than 5 robust standard deviations, pooled over the groups shown, and at least the
    valid images' standard error ``100 sqrt(p (1 - p) / N)`` when ``valid.csv`` records N): ``[{label, run, value,
    median, threshold}]``.  No interval covers the truth with such a run in its group; the reader must see it."""
    accuracies, floors = [], []
    for _, members in groups:
        rows = [(run, checkpoint_row(run, checkpoint)) for run in members]
        judged = [(run, float(row["acc"])) for run, row in rows if row is not None]
        accuracies.append(judged)
        share = statistics.median([value for _, value in judged]) / 100 if judged else 0.5
        images = _number(rows[-1][1].get("images")) if rows and rows[-1][1] else math.nan
        floors.append(100 * math.sqrt(share * (1 - share) / images) if images > 0 else 0.0)
    flags, thresholds = stats.diverging([[value for _, value in judged] for judged in accuracies], floors)
    found = []
    for (label, _), judged, flagged, threshold in zip(groups, accuracies, flags, thresholds):
        median = statistics.median([value for _, value in judged]) if judged else math.nan
        found += [{"label": label, "run": run, "value": value, "median": median, "threshold": threshold}
                  for (run, value), flag in zip(judged, flagged) if flag]
    return found


def divergence_notes(found):
    """One line per diverging run (``diverging_runs``)."""
    return [f"diverging seed? {entry['label']}: {entry['run']} has validation top-1 {entry['value']:.2f}, "
            f"{abs(entry['value'] - entry['median']):.2f} points from its group's median {entry['median']:.2f} (the "
            f"rule: {entry['threshold']:.2f}); the row's mean and intervals include it, and assume no such run"
            for entry in found]
