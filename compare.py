"""Compare training runs: mean +- std over seeds of the test metrics, paired differences, and validation curves.

    python compare.py --dataset fmnist-lt --model_index 41 --datetime all --markdown table.md
    python compare.py --dataset digits-lt --model_index 41 --objectives ERM CCE --plot curves.svg
    python compare.py --runs logs/SimpleCNN/digits-lt/ERM/2026-11-29-10-00-00 ... --plot curves.svg
    python compare.py --runs RUN_A RUN_B                         # B minus A, paired, on the same test images
    python compare.py --dataset fmnist-lt --model_index 41 --objectives ERM CCE --datetime all --paired
    python compare.py --dataset fmnist-lt --model_index 41 --objectives ERM LA CCE FL --datetime all --paired --holm
    python compare.py --dataset fmnist-lt --model_index 41 --datetime all --test_prior all --prior_plot shift.svg

Runs that differ only in their seed form one group (one row).  What is read, grouped and computed lives in
``results.py`` (``report.py`` shows the same numbers); this script prints it.
"""
import math
import statistics
import sys

import criterion
import figures
import results
import stats
from results import METRICS
from runs import load_predictions
from utils import ArgumentParser, UserError, atomic_write, run_cli


def get_args_parser():
    parser = ArgumentParser(description="Compare runs: one row per group of runs that differ only in seed.")
    results.add_selection_arguments(parser)
    parser.add_argument("--plot", default=None, help="write the mean validation accuracy per epoch of every group to this svg")
    parser.add_argument("--markdown", default=None, help="also write the table to this markdown file")
    parser.add_argument("--paired", action="store_true",
                        help="compare groups of seeds run by run (paired by seed): each later group minus the first")
    parser.add_argument("--holm", action="store_true",
                        help="with --paired and several comparisons: hold their verdicts together by Holm's "
                             "correction, so the chance of calling any true null difference stays at most 5 %% (the "
                             "report's default); without it each comparison is held to 5 %% alone")
    parser.add_argument("--test_prior", default=None, metavar="uniform|forward-R|backward-R|all",
                        help="also compare top-1 under this test class prior (importance weights on the same images; "
                             "the pairs too); all: SADE's eleven priors, one table (and --prior_plot)")
    parser.add_argument("--prior_plot", default=None, help="with --test_prior all: write the accuracy of every group "
                        "against the test prior to this svg")
    parser.add_argument("--select_on", choices=("valid",), default=None,
                        help="valid: rank the groups by the validation balanced accuracy of their checkpoints' "
                             "epochs (valid.csv) and report the chosen group's test numbers")
    return parser


def print_table(rows, valid_scores=None, test_prior=None, diverging=None):
    width = max(9, *(len(row["label"]) for row in rows))
    titles, cells = results.table_columns(rows, valid_scores, test_prior)
    widths = [max(len(title), *(len(cell[i]) for cell in cells)) for i, title in enumerate(titles)]
    header = "  ".join(f"{title:>{w}}" for title, w in zip(titles, widths))
    print(f"{'objective':<{width}} {'n':>2} {'split':>10}  {header}  {'min/run':>7}  runs")
    for row, cell in zip(rows, cells):
        values = "  ".join(f"{value:>{w}}" for value, w in zip(cell, widths))
        folders = str(row["runs"][0]) + (f" (+{row['n'] - 1})" if row["n"] > 1 else "")
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        print(f"{row['label']:<{width}} {row['n']:>2} {row['split']:>10}  {values}  {minutes:>7}  {folders}")
    print(results.TABLE_NOTE)
    for note in results.divergence_notes(diverging or []):
        print(f"warning: {note}")


def markdown_table(rows, valid_scores=None, test_prior=None, diverging=None):
    titles, cells = results.table_columns(rows, valid_scores, test_prior)
    lines = ["| objective | n | split | " + " | ".join(titles) + " | min/run |",
             "|---|---|---|" + "---|" * len(titles) + "---|"]
    for row, cell in zip(rows, cells):
        minutes = "-" if math.isnan(row["minutes"]) else f"{row['minutes']:.1f}"
        lines.append(f"| {row['label']} | {row['n']} | {row['split']} | {' | '.join(cell)} | {minutes} |")
    notes = "".join(f"\n**Warning**: {note}.\n" for note in results.divergence_notes(diverging or []))
    return "\n".join(lines) + "\n\n" + results.TABLE_NOTE + ".\n" + notes


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
    print(f"  its {row['split']} numbers: balanced acc {results.format_cell(*row['balanced_acc'])} over {row['n']} run(s)"
          + (f", 95% CI ({kind}) [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""))


def print_pairs(result):
    """What ``results.compare_pairs`` found, as text."""
    metric = result["metric"]
    print(f"\n{result['label_b']} minus {result['label_a']}, paired on the same {result['images']} {result['split']} "
          "images:")
    for pair in result["runs"]:
        low, high = pair["interval"]
        print(f"  {pair['b'].name} vs {pair['a'].name}: balanced acc {pair['difference']:+.2f} points, 95% CI "
              f"[{low:+.2f}, {high:+.2f}] (test images); top-1: {pair['only_b']} images right only in B, "
              f"{pair['only_a']} only in A, exact McNemar p = {pair['mcnemar_p']:.3g}")
    if "seeds" not in result:
        print("  (these two trained networks on these images; for a claim about the methods, compare groups of "
              "seeds with --paired)")
        return
    paired, pairs = result["seeds"], len(result["runs"])
    print(f"  mean over {pairs} seed pairs: {metric} {paired['mean']:+.2f} points (per pair "
          f"{', '.join(f'{d:+.2f}' for d in paired['differences'])}; standard deviation "
          f"{statistics.stdev(paired['differences']):.2f})")
    for key, what in (("seeds_and_images", "seeds and test images (Student's t on the seeds, the images' variance "
                                           "added)"),
                      ("t", f"Student's t over the {pairs} per-pair differences"),
                      ("images", "test images only, the trained runs held fixed")):
        low, high = paired[key]
        print(f"    95% CI, {what}: [{low:+.2f}, {high:+.2f}]")
    print(f"    exact sign-flip test over the {pairs} pairs: p = {paired['p_sign_flip']:.3g} (the smallest p {pairs} "
          f"pairs allow: {paired['smallest_p']:.3g}; {stats.pairs_needed(0.05)} pairs can reach 0.05)")
    print(f"    verdict rule: p = {paired['p_verdict']:.3g} (the smallest alpha at which both intervals that include "
          "the seed spread exclude 0)")
    print(f"    {seeds_needed_text(paired, pairs)}")
    print(f"  -> {verdict_text(result)}")


def verdict_text(result):
    """The verdict with its reason, and the family it was held in."""
    held, family = results.family_words(result), result["family"]
    a, b, p = result["label_a"], result["label_b"], result["seeds"]["p_verdict"]
    if not held:
        if result["verdict"] == "no difference shown":
            return f"no difference shown between {b} and {a}: an interval that includes the seed spread contains 0"
        return f"{b} is {result['verdict']} than {a} here: both intervals that include the seed spread exclude 0"
    if family["stopped"]:
        return (f"no difference shown between {b} and {a}: the verdict rule's p = {p:.3g} is below its level "
                f"{family['level']:.2g}, but Holm's steps stopped at a smaller p that was not below its own ({held})")
    if result["verdict"] == "no difference shown":
        return (f"no difference shown between {b} and {a}: the verdict rule's p = {p:.3g} is not below "
                f"{family['level']:.2g} ({held})")
    return (f"{b} is {result['verdict']} than {a} here: the verdict rule's p = {p:.3g} is below {family['level']:.2g} "
            f"({held})")


def seeds_needed_text(paired, pairs):
    """How many seed pairs the verdict rule would need at the observed difference, spread and images' variance."""
    needed = paired["seeds_needed"]
    if needed == math.inf:
        return ("seeds needed: no number of seeds would do; the test images' part of the interval alone covers a "
                "difference this small: more test images, not seeds")
    if needed is None:
        return "seeds needed: more than 1000 at this difference and spread (no difference worth the seeds)"
    enough = "enough" if needed <= pairs else "not enough"
    level = "" if paired.get("needed_at", 0.05) == 0.05 else f" (held to p < {paired['needed_at']:.2g})"
    return (f"seeds needed for the seeds+images interval to exclude 0 at this mean, spread and images' variance"
            f"{level}: about {needed} ({pairs} is {enough}; a rough guide, the spread of {pairs} pairs is itself "
            "uncertain)")


def markdown_pairs(found):
    """The paired comparisons as markdown rows (with their smallest p, seeds needed and family)."""
    lines = ["| B minus A | pairs | per seed | mean | 95% CI, seeds+images | 95% CI, Student t | 95% CI, images only | "
             "sign-flip p | smallest p | seeds needed | verdict | family |", "|" + "---|" * 12]
    for result in found:
        paired = result["seeds"]
        cells = [f"{result['label_b']} minus {result['label_a']}", str(len(result["runs"])),
                 ", ".join(f"{d:+.2f}" for d in paired["differences"]), f"{paired['mean']:+.2f}",
                 *(f"[{paired[key][0]:+.2f}, {paired[key][1]:+.2f}]" for key in ("seeds_and_images", "t", "images")),
                 f"{paired['p_sign_flip']:.3g}", f"{paired['smallest_p']:.3g}", results.needed_cell(paired),
                 result["verdict"], results.family_words(result) or "one comparison"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_groups(groups, args, test_prior=None):
    """``--paired``: each later group minus the first, paired by seed, the verdicts held together (Holm's correction
    with ``--holm``)."""
    if len(groups) < 2:
        raise UserError(f"--paired compares groups of runs, each later one against the first; these runs form "
                        f"{len(groups)}: {', '.join(label for label, _ in groups)}")
    found = []
    for group in groups[1:]:
        runs_a, runs_b, labels, notes = results.pair_groups([groups[0], group])
        for note in notes:
            print(f"note: {note}")
        found.append(results.compare_pairs(runs_a, runs_b, args.split, labels, args.checkpoint, test_prior))
    return results.hold_together(found, holm=args.holm)


def print_prior_shift(shifted):
    names = stats.SHIFTED_PRIORS
    width = max(9, *(len(label) for label in shifted))
    print(f"\ntop-1 (%) under each test class prior, mean over the runs of a row (importance-weighted test images):")
    print(f"{'':<{width}} " + " ".join(f"{name.replace('ward-', '.'):>7}" for name in names))
    for label, priors in shifted.items():
        print(f"{label:<{width}} " + " ".join(f"{priors[name]['acc']:7.2f}" if not math.isnan(priors[name]["acc"])
                                              else f"{'-':>7}" for name in names))  # '-': no saved predictions yet


def main(args):
    for flag, value in (("--markdown", args.markdown), ("--plot", args.plot), ("--prior_plot", args.prior_plot)):
        if value is not None:
            results.result_output(value, flag)  # a bad output path is refused before any work
    if args.prior_plot and args.test_prior != "all":
        raise UserError("--prior_plot draws the accuracy under every test prior: give --test_prior all")
    if args.test_prior not in (None, "all"):
        try:
            stats.test_prior(args.test_prior, [2, 1])
        except ValueError as error:
            raise UserError(f"--test_prior: {error}") from None
    runs = results.selected_runs(args)
    groups = results.group_runs(runs)
    one_prior = args.test_prior if args.test_prior != "all" else None
    rows = results.summarise(groups, args.split, args.checkpoint, one_prior)
    valid_scores = results.select_on_valid(groups, args.checkpoint) if args.select_on else None
    diverging = results.diverging_runs(groups, args.checkpoint)
    print_table(rows, valid_scores, one_prior, diverging)
    if valid_scores is not None:
        report_selection(valid_scores, rows)
    pairs = []
    if args.paired:
        pairs = paired_groups(groups, args, one_prior)
        for result in pairs:
            print_pairs(result)
    elif len(runs) == 2:
        if all(load_predictions(run, args.split, args.checkpoint) for run in runs):
            print_pairs(results.compare_pairs([runs[0]], [runs[1]], args.split, checkpoint=args.checkpoint,
                                              test_prior=one_prior))
        else:
            print("(no paired comparison: run 2_test.py on both runs to save their predictions)")
    if args.test_prior == "all":
        shifted = results.prior_shift(groups, args.split, args.checkpoint)
        print_prior_shift(shifted)
        if args.prior_plot:
            figures.plot_prior_shift(shifted, args.prior_plot, "top-1 under the test prior, mean over seeds")
            print(f"wrote {args.prior_plot}")
    if args.markdown:
        with atomic_write(args.markdown) as file:
            file.write(markdown_table(rows, valid_scores, one_prior, diverging))
            if any("seeds" in result for result in pairs):
                file.write("\n" + markdown_pairs([result for result in pairs if "seeds" in result]))
        print(f"wrote {args.markdown}")
    if args.plot:
        figures.plot_curves(results.validation_curves(groups), args.plot, results.curves_title(groups))
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
