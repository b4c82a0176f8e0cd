"""The result tables of docs/results.md and the README, regenerated from the committed run records (results/).

    python tables.py            # rewrite every <!-- table: NAME --> ... <!-- end --> block in place
    python tables.py --check    # change nothing; exit 1 naming each block that differs from what the records give

A table names its rows as ``3_run.sh`` does (a plan, a row as the plan writes it, and the plan's variables), so
it shows exactly the runs the plan trains: ``3_run.sh TAGS=1`` gives each row's tag and flags, and a row's runs
are the records with that tag (the newest of each seed, when the plan would keep it: ``runs.differences``).  Every
number comes from ``results.py``, the functions ``compare.py`` and ``report.py`` use; nothing here trains or
evaluates.
"""
import argparse
import contextlib
import functools
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import results
import stats
from runs import differences, read_metrics, run_settings, tagged_runs, verify_record
from utils import UserError, atomic_write, run_cli

HERE = Path(__file__).resolve().parent
DOCUMENTS = ("docs/results.md", "README.md")
BLOCK = re.compile(r"(<!-- table: ([a-z0-9-]+) -->\n)(.*?)(<!-- end -->)", re.S)


@dataclass(frozen=True)
class Row:
    """One row of a table: its label, and the plan row whose runs it shows."""
    label: str
    spec: str  # the row as 3_run.sh's OBJECTIVES writes it, e.g. "LDAM:--drw"
    plan: str = "fmnist-lt"
    env: tuple = ()  # more plan variables, e.g. (("EPOCHS", "60"), ("LRSTEP", "44 8 8"))
    variant: str = None  # a method's own evaluation of the runs (2_test.py), e.g. SADE's "aggregated"


# ---------------------------------------------------------------- the rows of the Fashion-MNIST-LT plan

MIX = "--mix_alpha=1"
MIXUP = f"mixup=ERM:--mix=mixup,{MIX},--mix_prob=1"
CUTMIX = f"ERM:--mix=cutmix,{MIX},--mix_prob=0.5"
REMIX = f"ERM:--mix=remix,{MIX},--mix_prob=1,--remix_kappa=3,--remix_tau=0.5"
CMO = f"--mix=cmo,{MIX},--mix_prob=0.5,--mix_off_first=4,--mix_off_last=3,--cmo_alpha=1,--mix_off_reference=200"
STAGE2 = "--schedule=cosine_epoch,--no-warmup"
CRT = f"ERM:--init_from=row:ERM,--freeze_backbone,--reinit_head,--sampler=class_aware,{STAGE2},--epochs=10"
LWS = f"ERM:--init_from=row:ERM,--lws,--sampler=class_aware,{STAGE2},--epochs=5"
GLMC = "ERM:--method=glmc,--glmc_label_weighting=1.2,--glmc_consistency=4,--glmc_resample=0"
GLMC_OPTIMISER = ",--lr=0.01,--weight_decay=5e-3,--batchsize=64,--schedule=cosine_each_epoch,--no-warmup"
RANDAUGMENT = "--augment=randaugment,--randaugment_magnitude="
BCL = "LA:--method=bcl,--normed_head,--normed_scale=30"
MISLAS = ("LAS:--init_from=row:mixup,--lws,--sampler=class_aware,--schedule=cosine_each_epoch,--no-warmup,--epochs=10,"
          "--lws_classifier_lr=0.5,--las_head=0.3,--las_tail=0.0,--bn_stats=frozen")
RIDE = "LDAM:--drw,--method=ride"
SADE = "ERM:--method=sade,--normed_head,--normed_scale=30"
SIXTY = (("EPOCHS", "60"), ("LRSTEP", "44 8 8"))

OBJECTIVE_ROWS = (
    Row("ERM", "ERM"), Row("CCE (gamma 0.5)", "CCE"), Row("CCE (gamma -0.9, the authors' code)", "CCE:--ccegamma=-0.9"),
    Row("COT", "COT"), Row("FL", "FL"), Row("CB", "CB"), Row("LDAM-DRW", "LDAM:--drw"), Row("BS", "BS"),
    Row("LA", "LA"))
METHOD_ROWS = (
    Row("cRT (batch norm re-estimated, the official)", CRT),
    Row("cRT (batch norm frozen)", f"{CRT},--bn_stats=frozen"),
    Row("LWS (batch norm re-estimated, the official)", LWS),
    Row("LWS (batch norm frozen)", f"{LWS},--bn_stats=frozen"),
    Row("weight balancing (stage 2 from the plan's ERM)",
        f"CB:--init_from=row:ERM,--freeze_backbone,--cb_loss=softmax_bce,--maxnorm=0.1,--maxnorm_threshold=relative,"
        f"--maxnorm_every=epoch,{STAGE2},--lr=0.01,--weight_decay=0.1,--epochs=10,--batchsize=64"),
    Row("mixup", MIXUP), Row("CutMix", CUTMIX), Row("Remix", REMIX), Row("Remix-DRW (imbalanced-DL's)", f"{REMIX},--drw,--drw_reduction=plain"),
    Row("CMO (pauses scaled to the schedule)", f"ERM:{CMO}"), Row("LA + CMO (pauses scaled)", f"LA:{CMO}"),
    Row("LDAM-DRW + SAM (rho 0.05, chosen on valid)", "LDAM:--drw,--sam_rho=0.05,--sam_bn_stats=both"),
    Row("LDAM-DRW + SAM (rho 0.8, the official)", "LDAM:--drw,--sam_rho=0.8,--sam_bn_stats=both"),
    Row("RandAugment (m 5, chosen on valid)", f"ERM:{RANDAUGMENT}5"),
    Row("RandAugment (m 9, the official)", f"ERM:{RANDAUGMENT}9"),
    Row("LA + RandAugment (m 5)", f"LA:{RANDAUGMENT}5"),
    Row("LA + RandAugment (m 9)", f"LA:{RANDAUGMENT}9"),
    Row("MiSLAS (mixup, then LAS)", MISLAS), Row("BCL", BCL),
    Row("GLMC (its optimiser: lr 0.01, wd 5e-3, batch 64, cosine)", GLMC + GLMC_OPTIMISER),
    Row("GLMC (the plan's optimiser)", GLMC),
    Row("RIDE (3 experts, LDAM-DRW each)", RIDE), Row("SADE (3 experts)", SADE))
# Rows a second stage refers to by name (--init_from=row:NAME) must be in the same call of 3_run.sh.
NAMED = (Row("mixup", MIXUP),)
ADJUSTED_ROWS = OBJECTIVE_ROWS[:6]  # the objectives that do not move the logits themselves
PRIOR_ROWS = (*(OBJECTIVE_ROWS[i] for i in (0, 1, 2, 6, 7, 8)), METHOD_ROWS[0], Row("SADE (3 experts, mean)", SADE),
              Row("SADE + test-time aggregation", SADE, variant="aggregated"))
STUDY_ROWS = (Row("ERM", "ERM"), Row("LA", "LA"), Row("BS", "BS"), Row("LDAM-DRW", "LDAM:--drw"),
              Row("cRT", CRT), Row("CCE", "CCE"))
GRID_ROWS = (
    Row("LDAM-DRW, no SAM", "LDAM:--drw"),
    *(Row(f"LDAM-DRW + SAM rho {rho}", f"LDAM:--drw,--sam_rho={rho},--sam_bn_stats=both") for rho in ("0.05", "0.2", "0.8")),
    Row("ERM, crop (no policy)", "ERM"),
    *(Row(f"RandAugment m {m}", f"ERM:{RANDAUGMENT}{m}") for m in (5, 9, 15)),
    Row("mixup alpha 0.2", "ERM:--mix=mixup,--mix_alpha=0.2,--mix_prob=1"), Row("mixup alpha 1", MIXUP),
    Row("CutMix alpha 0.2", "ERM:--mix=cutmix,--mix_alpha=0.2,--mix_prob=0.5"), Row("CutMix alpha 1", CUTMIX),
    Row("ERM, weight decay 5e-4 (the plan's)", "ERM"),
    Row("ERM, weight decay 5e-3 (weight balancing's stage 1)", "ERM:--weight_decay=5e-3"))
LIFT_CLASS_MEAN = "--method=lift,--lift_init=class_mean"
# The transfer plan's rows (3_run.sh PLAN=transfer; results/transfer.sh): (module label, its flags), each with ERM
# and LA; "the classifier alone" is the base every module is paired with.
TRANSFER_MODULES = (("the classifier alone", ",--lift_module=none"),
                    ("full fine-tuning (lr 0.0005)", ",--lift_module=full,--lr=0.0005"), ("AdaptFormer", ""))
TRANSFER_ROWS = tuple(Row(f"{module}, {objective}", f"{objective}:{LIFT_CLASS_MEAN}{flags}", plan="transfer")
                      for module, flags in TRANSFER_MODULES for objective in ("ERM", "LA"))
SCHEDULE_ROWS = (("ERM", "ERM"), ("LA", "LA"), ("mixup", MIXUP), ("CutMix", CUTMIX),
                 ("RandAugment (m 5)", f"ERM:{RANDAUGMENT}5"))


# ---------------------------------------------------------------- finding a row's runs

def plan_tags(plan, env, specs):
    """``{spec: (tag, model folder, dataset, the row's 1_train.py flags)}`` of the rows of one plan, from
    ``3_run.sh TAGS=1``."""
    variables = {"PYTHON": sys.executable, **os.environ, "PLAN": plan, "OBJECTIVES": "\n".join(specs), "TAGS": "1",
                 **dict(env)}
    for name in ("EPOCHS", "LRSTEP", "EXTRA", "DATASET_NAME", "MODEL", "SOURCE"):
        if name not in dict(env):
            variables.pop(name, None)
    done = subprocess.run(["bash", str(HERE / "3_run.sh")], env=variables, capture_output=True, text=True,
                          cwd=HERE)  # where the campaign runs the plans: a row's tag may name a file relative to it
    if done.returncode != 0:
        raise UserError(f"3_run.sh TAGS=1 PLAN={plan} failed: {done.stderr.strip().splitlines()[-1:]}")
    found = {}
    for line in done.stdout.splitlines():
        tag, model, dataset, spec, flags = line.split("\t")
        found[spec] = (tag, model, dataset, flags.split("\x1f"))  # the flags apart by the unit separator
    return found


class Records:
    """The runs of the tables' rows, under the records' root; each plan's tags asked of ``3_run.sh`` once, when a
    table first needs one of its rows."""

    def __init__(self, root, rows):
        self.root = Path(root).resolve()
        self.where, self.current = {}, {}
        self.by_plan = {}
        for row in rows:
            self.by_plan.setdefault((row.plan, row.env), dict.fromkeys(spec.spec for spec in NAMED))[row.spec] = None

    def runs(self, row, seeds=None):
        """The newest record of each seed of a row, by seed, when it is current: one the plan would keep, not train
        again (``runs.differences`` against the row's flags is empty; paths as the plan reads them, from the
        repository root).  A seed whose newest record has a recipe or default changed since is left out, as the
        campaign trains it again; a record edited since its export is a ``UserError`` (``verify_record``)."""
        key = (row.plan, row.env, row.spec)
        if key not in self.current:
            plan = (row.plan, row.env)
            if plan in self.by_plan:
                for spec, found in plan_tags(*plan, list(self.by_plan[plan])).items():
                    self.where[(*plan, spec)] = found
                del self.by_plan[plan]
            tag, model, dataset, flags = self.where[key]
            newest = {}
            for run in tagged_runs(self.root, model, dataset, tag):  # oldest first
                newest[run_settings(run).get("seed")] = run
            with contextlib.chdir(HERE):
                for seed, run in list(newest.items()):
                    verify_record(run)
                    if differences(run, flags):
                        del newest[seed]
            self.current[key] = newest
        newest = self.current[key]
        return [newest[seed] for seed in sorted(newest) if seeds is None or seed in seeds]


def seeds_of(members):
    return ",".join(str(run_settings(run).get("seed")) for run in members) or "-"


# ---------------------------------------------------------------- cells

def signed(interval):
    return f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"


def plain(interval):
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def valid_score(members, variant=None):
    """Mean validation balanced accuracy of the runs' chosen checkpoints (or of a test-time adjustment)."""
    scores = results.select_on_valid([("row", members)], variants={"row": variant} if variant else None)
    return f"{scores['row']:.2f}"


class Family:
    """The paired comparisons one table shows, held together: each cell is a placeholder until ``resolve`` has run
    Holm's correction over the table's comparisons with two or more seed pairs (``results.hold_together``), so a
    verdict's level depends on every other comparison of the table, as a reader comparing them all needs."""

    def __init__(self):
        self.found = []

    def cell(self, base, members, variants=(None, None)):
        """``members`` minus ``base``, paired by seed: a placeholder for its cell, or "-" without a common seed."""
        by_seed = {run_settings(run).get("seed"): run for run in base}
        pairs = [(by_seed[run_settings(run).get("seed")], run) for run in members
                 if run_settings(run).get("seed") in by_seed]
        if not pairs:
            return "-"
        self.found.append(results.compare_pairs([a for a, _ in pairs], [b for _, b in pairs], variants=variants,
                                                labels=("A", "B")))
        return f"\x00{len(self.found) - 1}\x00"

    def resolve(self, text):
        """``text`` with every placeholder replaced by its cell: the mean with its seeds+images and t intervals and
        the verdict at its Holm level, or with one common seed the two networks' difference and its images-only
        interval; and a last line naming the family."""
        judged = results.hold_together(self.found, holm=True)
        for index, found in enumerate(judged):
            if "seeds" not in found:
                only = found["runs"][0]
                cell = f"{only['difference']:+.2f} (1 seed, images {signed(only['interval'])})"
            else:
                paired = found["seeds"]
                cell = (f"{paired['mean']:+.2f} {signed(paired['seeds_and_images'])}, t {signed(paired['t'])}: "
                        f"{found['verdict']}")
            text = text.replace(f"\x00{index}\x00", cell)
        size = sum("seeds" in found for found in judged)
        if size > 1:
            text += (f"\nVerdicts held together by Holm's correction over this table's {size} comparisons with two "
                     "seeds or more: the chance that any of them calls a difference that is not there stays at most "
                     "5 %.\n")
        return text


@functools.cache
def _summary(members, variant):
    (row,) = results.summarise([("row", list(members))], variant=variant)
    return row


def summary(members, variant=None):
    """``results.summarise``'s row of one group (computed once per group: several tables show the same runs)."""
    return _summary(tuple(members), variant)


def interval_of(row):
    seeds = (row["intervals"] or {}).get("seeds")
    return plain(seeds["balanced_acc"]) if seeds else "n = 1"


# ---------------------------------------------------------------- the tables

def methods_table(records, rows, bases=("ERM", "LA")):
    """method | seeds | valid | test balanced accuracy | its interval | many | medium | minus each base."""
    base_runs = {name: records.runs(Row(name, name)) for name in bases}
    family = Family()
    lines = ["| method | seeds | valid bal. acc | bal. acc | 95% CI, seeds+images | many | medium | "
             + " | ".join(f"minus {name}: mean [seeds+images], t [..]" for name in bases) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(bases)]
    for row in rows:
        members = records.runs(row)
        if not members:
            lines.append(f"| {row.label} | not run yet |" + " |" * (5 + len(bases)))
            continue
        found = summary(members)
        pairs = ["-" if row.spec == name else family.cell(base_runs[name], members) for name in bases]
        lines.append(f"| {row.label} | {seeds_of(members)} | {valid_score(members)} | "
                     f"{results.format_cell(*found['balanced_acc'])} | {interval_of(found)} | "
                     f"{results.format_cell(*found['many_acc'])} | {results.format_cell(*found['medium_acc'])} | "
                     + " | ".join(pairs) + " |")
    return family.resolve("\n".join(lines) + "\n")


def adjustments_table(records, rows=ADJUSTED_ROWS):
    """The same runs after post-hoc adjustment and tau-normalisation, each paired with the runs as trained."""
    lines = ["| objective | adjustment | seeds | as trained | adjusted | 95% CI, seeds+images | gain: mean "
             "[seeds+images], t [..] | tau chosen on valid | valid bal. acc, adjusted |",
             "|---|---|---|---|---|---|---|---|---|"]
    family = Family()
    for row in rows:
        members = records.runs(row)
        for variant, name in results.VARIANTS.items():
            if not members:
                lines.append(f"| {row.label} | {name} | not run yet | | | | | | |")
                continue
            trained, adjusted = summary(members), summary(members, variant)
            taus = [(read_metrics(run, "test") or {}).get(variant, {}).get("tau") for run in members]
            lines.append(f"| {row.label} | {name} | {seeds_of(members)} | "
                         f"{results.format_cell(*trained['balanced_acc'])} | "
                         f"{results.format_cell(*adjusted['balanced_acc'])} | {interval_of(adjusted)} | "
                         f"{family.cell(members, members, (None, variant))} | "
                         f"{', '.join('-' if tau is None else f'{tau:g}' for tau in taus)} | "
                         f"{valid_score(members, variant)} |")
    return family.resolve("\n".join(lines) + "\n")


def priors_table(records, rows=PRIOR_ROWS):
    """Top-1 under SADE's eleven test priors, mean over each row's seeds, as compare.py --test_prior all prints it."""
    names = stats.SHIFTED_PRIORS
    width = max(len(row.label) for row in rows)
    lines = ["```", f"{'':<{width}} {'seeds':>5} " + " ".join(f"{name.replace('ward-', '.'):>7}" for name in names)]
    for row in rows:
        members = records.runs(row)
        if not members:
            lines.append(f"{row.label:<{width}} {'-':>5}  not run yet")
            continue
        if row.variant is None:
            (shifted,) = results.prior_shift([("row", members)]).values()
            accuracies = [shifted[name]["acc"] for name in names]
        else:  # learned again under each prior: its metrics, as 2_test.py --test_prior all wrote them (the seeds so
            # evaluated; the others are named)
            learned = [[_prior_metrics(run, name, row.variant) for name in names] for run in members]
            learned = [accuracies for accuracies in learned if not any(math.isnan(acc) for acc in accuracies)]
            if len(learned) < len(members):
                lines.append(f"{row.label:<{width}} {len(members):>5}  {len(members) - len(learned)} of the seeds not "
                             "evaluated under the priors yet (2_test.py --test_prior all)")
            if not learned:
                continue
            members, accuracies = learned, [sum(column) / len(learned) for column in zip(*learned)]
        lines.append(f"{row.label:<{width}} {len(members):>5} " + " ".join(f"{acc:7.2f}" for acc in accuracies))
    return "\n".join(lines + ["```"]) + "\n"


def _prior_metrics(run, prior, variant):
    """A run's top-1 under one test prior after its method's own evaluation ``variant``, or nan when its test
    evaluation did not run under that prior."""
    shifted = ((read_metrics(run, "test") or {}).get("test_priors") or {}).get(prior) or {}
    return float((shifted.get(variant) or {}).get("acc", math.nan))


def grid_table(records, rows=GRID_ROWS, seeds=(0, 1, 2)):
    """Validation balanced accuracy of the chosen checkpoint per seed (test never read), and its mean."""
    lines = ["| setting | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean (seeds) |",
             "|---|" + "---|" * (len(seeds) + 1)]
    for row in rows:
        members = {run_settings(run).get("seed"): run for run in records.runs(row)}
        scores = {seed: float(results.checkpoint_row(run)["balanced_acc"]) for seed, run in members.items()
                  if seed in seeds}
        cells = [f"{scores[seed]:.1f}" if seed in scores else "-" for seed in seeds]
        mean = f"{sum(scores.values()) / len(scores):.2f} ({len(scores)})" if scores else "not run yet"
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def schedule_table(records, rows=SCHEDULE_ROWS, seeds=(0, 1)):
    """Each regulariser minus ERM at 15 and at 60 epochs, paired by seed on the seeds all four groups have."""
    short = {label: records.runs(Row(label, spec), seeds) for label, spec in rows}
    long = {label: records.runs(Row(label, spec, env=SIXTY), seeds) for label, spec in rows}
    lines = ["| method | seeds | bal. acc, 15 epochs | bal. acc, 60 epochs | minus ERM, 15 epochs: mean "
             "[seeds+images], t [..] | minus ERM, 60 epochs | per seed, 15 then 60 | with 4x the schedule |",
             "|---|---|---|---|---|---|---|---|"]
    family = Family()
    for label, _ in rows:
        common = set.intersection(*({run_settings(run).get("seed") for run in group[name]}
                                    for group in (short, long) for name in ("ERM", label)))
        if not common:
            lines.append(f"| {label} | not run yet | | | | | | |")
            continue
        a15, b15, a60, b60 = ([run for run in group[name] if run_settings(run).get("seed") in common]
                              for group in (short, long) for name in ("ERM", label))
        cells = [results.format_cell(*summary(b15)["balanced_acc"]), results.format_cell(*summary(b60)["balanced_acc"])]
        if label == "ERM":
            lines.append(f"| ERM | {seeds_of(b15)} | {cells[0]} | {cells[1]} | - | - | - | - |")
            continue
        d15, d60 = per_seed_differences(a15, b15), per_seed_differences(a60, b60)
        lines.append(f"| {label} | {seeds_of(b15)} | {cells[0]} | {cells[1]} | {family.cell(a15, b15)} | "
                     f"{family.cell(a60, b60)} | {'; '.join(f'{x:+.2f} then {y:+.2f}' for x, y in zip(d15, d60))} | "
                     f"{schedule_reading(d15, d60)} |")
    return family.resolve("\n".join(lines) + "\n")


def per_seed_differences(base, members):
    found = results.compare_pairs(base, members, labels=("A", "B"))
    return [pair["difference"] for pair in found["runs"]]


def schedule_reading(short, long):
    """How a regulariser's difference to ERM moves with four times the schedule, seed by seed: ``reverses`` when it
    changes sign on every seed, ``shrinks`` or ``grows`` when its size moves the same way on every seed, else
    ``holds`` (the seeds disagree, so no change is shown)."""
    if all(math.copysign(1, a) != math.copysign(1, b) for a, b in zip(short, long)):
        return "reverses"
    if all(abs(b) < abs(a) for a, b in zip(short, long)):
        return "shrinks"
    if all(abs(b) > abs(a) for a, b in zip(short, long)):
        return "grows"
    return "holds"


def study_table(records, rows=STUDY_ROWS):
    """PLAN=study's verdict on these runs: every group and test-time adjustment ranked on valid/, the chosen one's
    test numbers, and the chosen group minus each other, paired by seed (what report.py shows)."""
    groups = [(row.label, records.runs(row)) for row in rows]
    groups = [(label, members) for label, members in groups if members]
    if not groups:
        return "not run yet\n"
    found = results.gather(groups)
    rows_by_label = {row["label"]: row for row in found["rows"]}
    pairs = {pair["label_a"]: pair for pair in found["pairs"]}
    lines = ["| group | seeds | valid bal. acc | bal. acc | 95% CI, seeds+images | chosen minus it: mean "
             "[seeds+images]: verdict (Holm's correction over every pair of groups: its p, the level it is held to) |",
             "|---|---|---|---|---|---|"]
    for label, score in found["scores"].items():
        row = rows_by_label[label]
        pair = pairs.get(label)
        versus = "(chosen on valid/)" if label == found["chosen"] else "-" if pair is None else (
            f"{pair['seeds']['mean']:+.2f} {signed(pair['seeds']['seeds_and_images'])}: {pair['verdict']} "
            f"(p {pair['seeds']['p_verdict']:.2g}, held to {pair['family']['level']:.2g})")
        lines.append(f"| {label} | {seeds_of(row['runs'])} | {score:.2f} | {results.format_cell(*row['balanced_acc'])} | "
                     f"{interval_of(row)} | {versus} |")
    return "\n".join(lines) + "\n"


def readme_table(records):
    """The README's headline: balanced accuracy and its seeds+images interval of five objectives."""
    picked = [OBJECTIVE_ROWS[i] for i in (0, 1, 6, 7, 8)]
    cells, intervals = [], []
    for row in picked:
        members = records.runs(row)
        found = summary(members) if members else None
        cells.append(results.format_cell(*found["balanced_acc"]) if found else "not run yet")
        intervals.append(interval_of(found) if found else "")
    return "\n".join(["| " + " | ".join(row.label for row in picked) + " |", "|---" * len(picked) + "|",
                      "| " + " | ".join(cells) + " |", "| " + " | ".join(intervals) + " |"]) + "\n"


# Side by side with the authors' code: (method, this project's row, its seed, the authors' run folder under the records)
SIDE_BY_SIDE = (("GLMC", Row("GLMC", GLMC + GLMC_OPTIMISER), 0, "authors/glmc/fmnist-lt-seed0"),
                ("RIDE", Row("RIDE (3 experts, LDAM-DRW each)", RIDE), 0, "authors/ride/fmnist-lt-seed0"),
                *((f"GLMC seed {seed}", Row("GLMC", GLMC + GLMC_OPTIMISER), seed,
                   f"authors/glmc/fmnist-lt-seed{seed}") for seed in (1, 2)))


def authors_run(folder):
    """An authors'-code run that ``bench/authors/`` wrote: its validation curve, its test predictions' metrics and
    the epoch its code chose, or None when it has not run."""
    import csv
    import json

    import numpy as np
    if not (folder / "run.json").is_file():
        return None
    about = json.loads((folder / "run.json").read_text())
    with open(folder / "valid.csv") as file:
        curve = [float(row["acc"]) for row in csv.DictReader(file)]
    with np.load(folder / "test_predictions.npz") as saved:
        targets, predicted, classes = saved["targets"].astype(int), saved["predicted"].astype(int), len(saved["classes"])
    metrics = stats.classification_metrics(targets, predicted, classes, about["class_counts"])
    return {"curve": curve, "epoch": about["chosen_epoch"], "metrics": metrics, "about": about}


def side_by_side_table(records, entries=SIDE_BY_SIDE):
    """Per-epoch validation accuracy of this project's run and of the authors' code on the same split and seed, then
    each one's checkpoint chosen on valid/ on test."""
    curves, finals = {}, []
    for method, row, seed, folder in entries:
        ours = records.runs(row, seeds=(seed,))
        theirs = authors_run(records.root / folder)
        if ours:
            (run,) = ours
            rows = results.valid_rows(run)
            curves[f"{method}: this project"] = [float(entry["balanced_acc"]) for entry in rows]
            chosen = results.checkpoint_row(run)
            found = summary(ours)
            finals.append(f"| {method} | this project | {int(chosen['epoch']) + 1} | {float(chosen['balanced_acc']):.1f} | "
                          f"{found['balanced_acc'][0]:.2f} | {found['many_acc'][0]:.2f} | {found['medium_acc'][0]:.2f} |")
        else:
            finals.append(f"| {method} | this project | not run yet | | | | |")
        if theirs:
            curves[f"{method}: authors' code"] = theirs["curve"]
            metrics = theirs["metrics"]
            finals.append(f"| {method} | authors' code ({theirs['about']['commit']}) | {theirs['epoch']} | "
                          f"{max(theirs['curve']):.1f} | {metrics['balanced_acc']:.2f} | {metrics['many_acc']:.2f} | "
                          f"{metrics['medium_acc']:.2f} |")
        else:
            finals.append(f"| {method} | authors' code | not run yet | | | | |")
    lines = []
    if curves:
        epochs = max(len(curve) for curve in curves.values())
        lines += ["| epoch | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
        lines += [f"| {epoch + 1} | " + " | ".join(f"{curve[epoch]:.1f}" if epoch < len(curve) else ""
                                                  for curve in curves.values()) + " |" for epoch in range(epochs)]
        lines.append("")
    lines += ["| method | code | checkpoint (epoch, chosen on valid) | valid bal. acc | test bal. acc | many | medium |",
              "|---|---|---|---|---|---|---|", *finals]
    return "\n".join(lines) + "\n"


LIFT_SIDE_BY_SIDE = "authors/lift/side-by-side.json"


def lift_side_by_side_table(records, path=LIFT_SIDE_BY_SIDE):
    """``bench/authors/lift.py``'s comparison with LIFT's code, one row per module: the largest differences at the
    start (trained parameters and logits), the two losses, the trained parameter counts, the trained tensors that
    only one code has, and the largest difference after one SGD step, beside how far that step moved them."""
    import json

    file = records.root / path
    if not file.is_file():
        return "not run yet: `python bench/authors/lift.py --code LIFT --out results/authors/lift/side-by-side.json`\n"
    about = json.loads(file.read_text())
    lines = [f"Their code: {about['code']} at {about['commit'][:7]}.", "",
             "| module | same tokens | trained parameters at the start, max diff | logits at the start, max diff | "
             "loss: theirs | loss: this project | trained parameters: theirs / this project | trained tensors one "
             "code alone has | after one step, max diff | the step's largest move |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in about["rows"]:
        (their_loss, our_loss), (their_count, our_count) = row["loss"], row["trained_parameters"]
        alone = ", ".join(row.get("theirs_only", []) + row["unmatched"]) or "none"
        lines.append(f"| {row['module']} | {'yes' if row['same_tokens'] else 'no'} | {row['start']:.1e} | "
                     f"{row['logits_at_start']:.1e} | {their_loss:.6f} | {our_loss:.6f} | "
                     f"{their_count:,} / {our_count:,} | {alone} | {row['after_one_step']:.1e} | {row['step']:.1e} |")
    return "\n".join(lines) + "\n"


def transfer_table(records, rows=TRANSFER_ROWS):
    """module, objective | seeds | valid | test balanced accuracy | interval | many | medium | minus the classifier
    alone with the same objective, paired by seed."""
    family = Family()
    lines = ["| fine-tuned | seeds | valid bal. acc | bal. acc | 95% CI, seeds+images | many | medium | minus the "
             "classifier alone (same objective): mean [seeds+images], t [..] |", "|---|---|---|---|---|---|---|---|"]
    bases = {row.spec.split(":")[0]: records.runs(row) for row in rows[:2]}
    for row in rows:
        members = records.runs(row)
        if not members:
            lines.append(f"| {row.label} | not run yet | | | | | | |")
            continue
        found = summary(members)
        base = bases[row.spec.split(":")[0]]
        pair = "-" if row in rows[:2] else family.cell(base, members)
        lines.append(f"| {row.label} | {seeds_of(members)} | {valid_score(members)} | "
                     f"{results.format_cell(*found['balanced_acc'])} | {interval_of(found)} | "
                     f"{results.format_cell(*found['many_acc'])} | {results.format_cell(*found['medium_acc'])} | "
                     f"{pair} |")
    return family.resolve("\n".join(lines) + "\n")


TABLES = {
    "objectives": lambda records: methods_table(records, OBJECTIVE_ROWS),
    "variants": adjustments_table,
    "priors": priors_table,
    "methods": lambda records: methods_table(records, METHOD_ROWS),
    "grid": grid_table,
    "schedule": schedule_table,
    "study": study_table,
    "readme": readme_table,
    "side-by-side": side_by_side_table,
    "lift-side-by-side": lift_side_by_side_table,
    "transfer": transfer_table,
}
ALL_ROWS = (*OBJECTIVE_ROWS, *METHOD_ROWS, *GRID_ROWS, *STUDY_ROWS, *TRANSFER_ROWS,
            *(entry[1] for entry in SIDE_BY_SIDE), *(Row(label, spec, env=env) for label, spec in SCHEDULE_ROWS for env in ((), SIXTY)))


# ---------------------------------------------------------------- the documents

def regenerate(text, records, source="the document"):
    """``text`` with every table block replaced by what the records give."""
    def replace(match):
        name = match.group(2)
        if name not in TABLES:
            raise UserError(f"{source}: <!-- table: {name} --> is no table of tables.py ({', '.join(TABLES)})")
        return match.group(1) + TABLES[name](records) + match.group(4)
    return BLOCK.sub(replace, text)


def get_args_parser():
    parser = argparse.ArgumentParser(description="Regenerate the result tables of the documents from the run records.")
    parser.add_argument("documents", nargs="*", default=list(DOCUMENTS), help="markdown files (default: "
                        + ", ".join(DOCUMENTS) + ")")
    parser.add_argument("--records", default=str(HERE / "results"), help="the records' root (default results/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table differs")
    return parser


def main(args):
    texts = {}
    for name in args.documents:  # every block named is a table here, checked before any work
        path = Path(name) if Path(name).is_absolute() else HERE / name
        texts[name] = path, path.read_text()
        unknown = [match.group(2) for match in BLOCK.finditer(texts[name][1]) if match.group(2) not in TABLES]
        if unknown:
            raise UserError(f"{name}: <!-- table: {unknown[0]} --> is no table of tables.py ({', '.join(TABLES)})")
    records = Records(args.records, ALL_ROWS)
    stale = []
    for name, (path, text) in texts.items():
        new = regenerate(text, records, name)
        blocks = {match.group(2): match.group(3) for match in BLOCK.finditer(text)}
        changed = [block for block, body in ((m.group(2), m.group(3)) for m in BLOCK.finditer(new))
                   if blocks.get(block) != body]
        if not changed:
            print(f"{name}: every table is what the records give")
            continue
        stale += [f"{name}: {block}" for block in changed]
        if args.check:
            print(f"{name}: these tables differ from what the records give: {', '.join(changed)}")
        else:
            with atomic_write(path) as file:
                file.write(new)
            print(f"{name}: rewrote {', '.join(changed)}")
    if stale and args.check:
        print("run python tables.py to regenerate them, and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
