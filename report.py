"""One self-contained HTML page for a set of runs: the question and the data, the verdict first, the comparison
table with intervals and the paired verdicts, the leading methods' per-class accuracy, confusion matrices and
calibration, the validation curves, the shift to other test priors, and how to reproduce every number.

    python report.py --dataset fmnist-lt --model_index 41 --datetime all --out report.html
    python report.py --runs logs/SimpleCNN/digits-lt/ERM/2026-11-30-10-00-00 ... --out report.html

Every number comes from ``results.py``, the functions ``compare.py`` prints; the figures are inline SVG, so the
file opens from disk with no network and no script.  The verdict is chosen on ``valid/``: the group with the best
validation balanced accuracy (test-time adjustments of a run count as groups of their own), its test accuracy
with the interval that includes the seed spread, and, against every other group, whether the seeds support a
difference.
"""
import datetime
import html
import json
import math
import sys
from pathlib import Path

import numpy as np

import figures
import results
import stats
import train_args
from runs import CONFIG, load_predictions, read_metrics, run_facts, run_settings, top_one
from utils import ArgumentParser, UserError, atomic_write, run_cli

LEADING = 3  # methods whose per-class accuracy, confusion matrix and calibration are drawn


def get_args_parser():
    parser = ArgumentParser(description="Write one HTML report for a set of runs (the study plan's last step).")
    results.add_selection_arguments(parser)
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--title", default=None, help="the page's title (default: the dataset's name)")
    return parser


# ---------------------------------------------------------------- what the page says

def leading_figures(found, checkpoint="best"):
    """Per-class accuracy, confusion matrix and reliability of the groups valid/ ranks first (SVG text)."""
    drawn = []
    groups = dict(found["groups"])
    for label in list(found["scores"])[:LEADING]:
        members, variant = groups[label], found["kinds"].get(label)
        saved = results.saved_predictions(members, None, checkpoint, variant)
        if saved is None:
            continue
        _, targets, predictions = saved
        facts = run_facts(members[0])
        classes, counts = list(facts["classes"]), facts.get("class_counts")
        recall = np.mean([[np.mean(run[targets == k] == k) if np.any(targets == k) else np.nan
                           for k in range(len(classes))] for run in predictions], axis=0)
        table = [{"class": name, "recall": 100 * float(value)} for name, value in zip(classes, recall)]
        pooled_targets, pooled = np.concatenate([targets] * len(predictions)), np.concatenate(predictions)
        entry = {"label": label, "per_class": None, "confusion": None, "reliability": None}
        if counts:
            entry["per_class"] = figures.plot_per_class(table, counts, None, f"{label}, mean over {len(members)} run(s)")
        if len(classes) <= 100:
            entry["confusion"] = figures.plot_confusion_matrix(pooled_targets, pooled, classes, None,
                                                               f"{label}, {len(members)} run(s) pooled")
        top = _top_one(members, checkpoint) if variant is None else None
        if top is not None:
            entry["reliability"] = figures.plot_reliability(top[0], top[1] == pooled_targets, None, label)
        drawn.append(entry)
    return drawn


def _top_one(members, checkpoint):
    """The runs' top-1 probabilities and classes on test, pooled, or None when one run's file keeps neither."""
    found = [top_one(run, "test", checkpoint) for run in members]
    if any(entry is None for entry in found):
        return None
    return np.concatenate([entry[0] for entry in found]), np.concatenate([entry[1] for entry in found])


def data_section(groups):
    """The dataset: its classes and training counts (from the first run's checkpoint), and the split sizes."""
    first = groups[0][1][0]
    state = run_facts(first)
    counts = state.get("class_counts") or []
    valid_rows = results.valid_rows(first)
    saved = load_predictions(first, "test")
    return {"dataset": first.parent.parent.name, "model": first.parent.parent.parent.name, "classes": state["classes"],
            "runs": sum(len(members) for _, members in groups),
            "counts": counts, "train": int(sum(counts)), "valid": valid_rows[-1].get("images") if valid_rows else "-",
            "test": len(saved[2]) if saved else "-",
            "figure": figures.plot_class_counts(counts, list(state["classes"]), None, "training images per class")
            if counts else None}


def reproduce_section(groups):
    """For each group: the command that trained its runs (their seeds), and the runs' folders and environments."""
    entries, environments = [], {}
    for label, members in groups:
        settings = run_settings(members[0])
        seeds = [run_settings(run).get("seed") for run in members]
        command = train_args.command_line({**settings, "seed": None, "tag": None, "init_from": None})
        if settings.get("init_from"):
            command += " --init_from=<the same seed's run of its first stage>"
        entries.append({"label": label, "command": f"{command} --seed=S   # S in {', '.join(map(str, seeds))}",
                        "runs": [str(run) for run in members]})
        for run in members:
            try:
                environment = json.loads((run / CONFIG).read_text()).get("environment", {})
            except (OSError, ValueError, AttributeError):
                environment = {}
            if not isinstance(environment, dict):  # a hand-edited config.json: nothing to show, no traceback
                environment = {}
            key = ", ".join(f"{name} {environment[name]}" for name in ("python", "torch", "torchvision", "device")
                            if name in environment)
            environments.setdefault(key or "not recorded", []).append(run.name)
    return entries, environments


# ---------------------------------------------------------------- the page

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1d2430; margin: 0;
       background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #dde1e7;
padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
p, li { line-height: 1.5; } .muted { color: #5c6675; font-size: 13px; }
.verdict { border-left: 6px solid #2f6fdc; background: #eef4ff; padding: 14px 18px; margin: 18px 0; }
.verdict .headline { font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; width: 100%; }
th, td { border: 1px solid #dde1e7; padding: 4px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f2f5; } td:first-child, th:first-child { text-align: left; white-space: normal; }
tr.chosen td { background: #eef4ff; font-weight: 600; }
.better { color: #16794c; font-weight: 600; } .worse { color: #b42318; font-weight: 600; } .none { color: #5c6675; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.figure { flex: 1 1 340px; max-width: 520px; }
.figure svg { width: 100%; height: auto; }
pre { background: #f4f5f7; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
.scroll { overflow-x: auto; }
"""


def _svg(text):
    """An inline SVG figure (matplotlib's document without its XML prologue)."""
    if not text:
        return ""
    return f'<div class="figure">{text[text.index("<svg"):]}</div>'


def _verdict_html(found):
    rows = {row["label"]: row for row in found["rows"]}
    chosen = rows[found["chosen"]]
    mean, std = chosen["balanced_acc"]
    interval = (chosen["intervals"] or {}).get("seeds") or {}
    seeds = interval.get("balanced_acc") if interval else None
    text = [f'<div class="verdict"><div class="headline">valid/ chooses {html.escape(chosen["label"])}</div>',
            f"<p>Its validation balanced accuracy, the mean over its {chosen['n']} run(s), is "
            f"{found['scores'][chosen['label']]:.2f} %, the best of {len(found['scores'])} groups. On the test images "
            f"its balanced accuracy is <b>{results.format_cell(mean, std)} %</b>"
            + (f", 95 % interval with the seed spread and the test images [{seeds[0]:.2f}, {seeds[1]:.2f}]."
               if seeds else ": one run, so no interval can include the seed spread; train more seeds to know "
                             "how much of this a new run would keep.") + "</p>"]
    if found["pairs"]:
        supported = [pair for pair in found["pairs"] if pair["verdict"] != "no difference shown"]
        text.append(f"<p>Paired by seed with each other group, the seeds support {len(supported)} of "
                    f"{len(found['pairs'])} differences, {html.escape(_family(found['pairs']))}:</p><ul>")
        for pair in found["pairs"]:
            paired = pair["seeds"]
            word = {"better": "better than", "worse": "worse than"}.get(pair["verdict"], "not shown to differ from")
            css = {"better": "better", "worse": "worse"}.get(pair["verdict"], "none")
            text.append(f'<li><span class="{css}">{html.escape(pair["label_b"])} is {word} '
                        f'{html.escape(pair["label_a"])}</span>: {paired["mean"]:+.2f} points over '
                        f'{len(pair["runs"])} pairs, seeds+images [{paired["seeds_and_images"][0]:+.2f}, '
                        f'{paired["seeds_and_images"][1]:+.2f}], Student t [{paired["t"][0]:+.2f}, '
                        f'{paired["t"][1]:+.2f}], verdict rule p = {paired["p_verdict"]:.2g}, held to '
                        f'{pair["family"]["level"]:.2g}'
                        + (" (but Holm's steps stopped at a smaller p)" if pair["family"]["stopped"] else "") + "; "
                        f'{html.escape(_needed(paired, len(pair["runs"])))}</li>')
        text.append("</ul>")
    else:
        text.append("<p>With one seed per group no difference between methods can be claimed.</p>")
    text += [f"<p><b>Warning</b>: {html.escape(note)}.</p>" for note in results.divergence_notes(found["diverging"])]
    text.append("</div>")
    return "\n".join(text)


def _family(pairs):
    """The family the page's verdicts are held in, and its correction."""
    family = pairs[0]["family"]
    if family["size"] == 1:
        return "held to p < 0.05 alone (one comparison)"
    return (f"held together by Holm's correction over a family of {family['size']} comparisons, every pair of groups "
            f"with seeds in common ({family['shown']} shown: valid/ chose the group the others are compared with "
            "among all of them, so its comparisons are a selection from every pair), so that the chance of calling "
            "any difference that is not there stays at most 5 %")


def _needed(paired, pairs):
    needed = paired["seeds_needed"]
    if needed == math.inf:
        return "no number of seeds would show it: the test images alone cover a difference this small"
    if needed is None:
        return "no number of seeds would show a difference this small"
    return f"about {needed} seeds would show it" if needed > pairs else f"{pairs} seeds are enough"


def _table_html(found):
    titles, cells = results.table_columns(found["rows"], found["scores"])
    head = "".join(f"<th>{html.escape(title)}</th>" for title in ["method", "n", *titles])
    lines = [f"<div class='scroll'><table><tr>{head}</tr>"]
    for row, cell in sorted(zip(found["rows"], cells), key=lambda item: -found["scores"].get(item[0]["label"], -1e9)):
        css = ' class="chosen"' if row["label"] == found["chosen"] else ""
        lines.append(f"<tr{css}><td>{html.escape(row['label'])}</td><td>{row['n']}</td>"
                     + "".join(f"<td>{html.escape(value)}</td>" for value in cell) + "</tr>")
    lines.append("</table></div>")
    lines.append(f'<p class="muted">{html.escape(results.TABLE_NOTE)}.</p>')
    lines += [f'<p class="worse">{html.escape(note)}.</p>' for note in results.divergence_notes(found["diverging"])]
    return "\n".join(lines)


def _pairs_html(found):
    if not found["pairs"]:
        return "<p>No pairs: every group needs at least two seeds in common with the chosen one.</p>"
    head = ("<tr><th>the chosen minus</th><th>pairs</th><th>per seed</th><th>mean</th><th>seeds+images</th>"
            "<th>Student t</th><th>images only</th><th>sign-flip p</th><th>smallest p</th><th>verdict rule p</th>"
            "<th>held to p &lt;</th><th>seeds needed</th><th>verdict</th></tr>")
    holm = (" (Holm, 1979: the smallest p is held to 0.05 over the family's size, the next to 0.05 over one less, "
            "and so on while each passes)") if found["pairs"][0]["family"]["size"] > 1 else ""
    lines = [f"<p>The verdicts are {html.escape(_family(found['pairs']))}{holm}. 'verdict rule p' is the smallest "
             "level at which both intervals that include the seed spread exclude 0; 'seeds needed' is how many pairs "
             "would make the verdict hold at this difference, spread and images.</p>",
             "<div class='scroll'><table>", head]
    for pair in found["pairs"]:
        paired = pair["seeds"]
        cells = [html.escape(pair["label_a"]), str(len(pair["runs"])),
                 ", ".join(f"{d:+.2f}" for d in paired["differences"]), f"{paired['mean']:+.2f}",
                 *(f"[{paired[key][0]:+.2f}, {paired[key][1]:+.2f}]" for key in ("seeds_and_images", "t", "images")),
                 f"{paired['p_sign_flip']:.3g}", f"{paired['smallest_p']:.3g}", f"{paired['p_verdict']:.3g}",
                 f"{pair['family']['level']:.3g}", html.escape(results.needed_cell(paired)), pair["verdict"]]
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def render(title, data, found, leading, curves, shifted, reproduce):
    entries, environments = reproduce
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><main>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>Which method should train {html.escape(data['model'])} on "
             f"<b>{html.escape(data['dataset'])}</b>, and how sure can we be? Written "
             f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by report.py from {data['runs']} training run(s); "
             "every choice below is made on valid/, every accuracy is on test/.</p>",
             _verdict_html(found),
             "<h2>The data</h2>",
             f"<p>{len(data['classes'])} classes; training images {data['train']:,}, validation images "
             f"{data['valid']}, test images {data['test']}. Largest class {max(data['counts']):,}, smallest "
             f"{min(data['counts']):,} (imbalance ratio {max(data['counts']) / min(data['counts']):.1f}).</p>"
             if data["counts"] else "", f"<div class='figures'>{_svg(data['figure'])}</div>",
             "<h2>Every method</h2>", _table_html(found),
             "<h2>The chosen method against each other, paired by seed</h2>", _pairs_html(found),
             "<h2>The leading methods, class by class</h2>"]
    for entry in leading:
        parts.append(f"<h3>{html.escape(entry['label'])}</h3><div class='figures'>"
                     + _svg(entry["per_class"]) + _svg(entry["confusion"]) + _svg(entry["reliability"]) + "</div>")
    parts += ["<h2>Validation accuracy per epoch</h2>", f"<div class='figures'>{_svg(curves)}</div>"]
    if shifted:
        parts += ["<h2>Under other test class priors</h2>",
                  "<p>The same test images weighted as if the classes came as skewed as training (forward), uniform, "
                  "or skewed the other way (backward): a method that gains on the balanced test by trading head "
                  "for tail shows it here.</p>", shifted]
    parts.append("<h2>How to reproduce every number</h2>")
    for entry in entries:
        parts.append(f"<h3>{html.escape(entry['label'])}</h3><pre>{html.escape(entry['command'])}</pre>"
                     f"<p class='muted'>runs: {html.escape(', '.join(entry['runs']))}</p>")
    parts.append("<p>Then <code>python 2_test.py --model_index M --dataset D --objective O --datetime RUN "
                 "--posthoc_tau=auto --tau_norm=auto</code> on each run, and this page: <code>python report.py "
                 "--runs ... --out FILE</code>.</p><h3>Software</h3><ul>")
    for environment, names in environments.items():
        parts.append(f"<li>{html.escape(environment)}: {len(names)} run(s)</li>")
    parts.append("</ul></main></body></html>")
    return "\n".join(part for part in parts if part)


def main(args):
    results.result_output(args.out, "--out")
    runs = results.selected_runs(args)
    groups = results.group_runs(runs)
    found = results.gather(groups, args.checkpoint)
    data = data_section(groups)
    title = args.title or f"{data['dataset']}: which method, and how sure?"
    trained = [(label, members) for label, members in groups]
    curves = figures.plot_curves(results.validation_curves(trained), None, results.curves_title(trained))
    try:
        shifted = _svg(figures.plot_prior_shift(results.prior_shift(trained, checkpoint=args.checkpoint), None,
                                                "top-1 under the test prior, mean over seeds"))
        shifted = f"<div class='figures'>{shifted}</div>"
    except UserError as error:  # no class counts, or a prior the test images cannot express: say why
        shifted = f"<p>Not drawn: {html.escape(str(error))}.</p>"
    page = render(title, data, found, leading_figures(found, args.checkpoint), curves, shifted,
                  reproduce_section(trained))
    with atomic_write(args.out) as file:
        file.write(page)
    chosen = next(row for row in found["rows"] if row["label"] == found["chosen"])
    print(f"verdict: valid/ chooses {found['chosen']} (validation balanced accuracy "
          f"{found['scores'][found['chosen']]:.2f}); its test balanced accuracy {results.format_cell(*chosen['balanced_acc'])}")
    for pair in found["pairs"]:
        print(f"  {pair['label_b']} vs {pair['label_a']}: {pair['seeds']['mean']:+.2f} points, {pair['verdict']}")
    if found["pairs"]:
        print(f"  (verdicts: {_family(found['pairs'])})")
    for note in results.divergence_notes(found["diverging"]):
        print(f"warning: {note}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
