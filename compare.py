"""Compare training runs: a table of test metrics and an overlay of validation-accuracy curves.

    python compare.py --dataset digits-lt --model_index 41 --objectives ERM CCE COT FL --plot curves.svg
    python compare.py --runs logs/SimpleCNN/digits-lt/ERM/2026-11-29-10-00-00 ... --plot curves.svg

Each run is read from its folder: ``test_metrics.json`` (or ``valid_metrics.json``)
written by 2_test.py, and ``valid.csv`` written by 1_train.py.
"""
import json
import sys
from pathlib import Path

from criterion import OBJECTIVES
from get_model import get_model
from utils import ArgumentParser, UserError, find_run_dir, read_csv, run_cli


def get_args_parser():
    parser = ArgumentParser(description="Compare runs side by side.")
    parser.add_argument("--runs", nargs="+", default=[], help="run folders")
    parser.add_argument("--dataset", help="with --model_index and --objectives: pick runs by name")
    parser.add_argument("--model_index", type=int)
    parser.add_argument("--objectives", nargs="+", default=[], choices=OBJECTIVES)
    parser.add_argument("--datetime", default="latest", help="run of each objective (default: latest)")
    parser.add_argument("--logs_dir", default="logs")
    parser.add_argument("--plot", default=None, help="write validation accuracy per epoch of every run to this svg")
    return parser


def resolve_runs(args):
    runs = [Path(run) for run in args.runs]
    if args.objectives:
        if args.dataset is None or args.model_index is None:
            raise UserError("--objectives needs --dataset and --model_index")
        try:
            name = get_model(args.model_index).__name__
        except ValueError as error:
            raise UserError(str(error)) from None
        runs += [find_run_dir(args.logs_dir, name, args.dataset, objective, args.datetime) for objective in args.objectives]
    if not runs:
        raise UserError("name runs with --runs, or with --dataset, --model_index and --objectives")
    missing = [str(run) for run in runs if not (run / "valid.csv").is_file()]
    if missing:
        raise UserError(f"not a training run folder (no valid.csv): {', '.join(missing)}")
    return runs


def run_label(run):
    """The objective, from ``logs/<Model>/<dataset>/<objective>/<time>``."""
    return run.parent.name


def summarise(run):
    """One table row: test metrics when 2_test.py has run, else the best validation epoch."""
    for split in ("test", "valid"):
        path = run / f"{split}_metrics.json"
        if path.is_file():
            metrics = json.loads(path.read_text())
            return {"split": split, **{key: metrics[key] for key in ("acc", "balanced_acc", "macro_f1")}}
    rows = read_csv(run / "valid.csv")
    if not rows:
        return {"split": "-", "acc": float("nan"), "balanced_acc": float("nan"), "macro_f1": float("nan")}
    best = max(rows, key=lambda row: float(row["acc"]))
    return {"split": "best valid", **{key: float(best[key]) for key in ("acc", "balanced_acc", "macro_f1")}}


def print_table(runs, file=sys.stdout):
    labels = [run_label(run) for run in runs]
    width = max(9, *map(len, labels))
    print(f"{'objective':<{width}} {'split':>10} {'top-1':>7} {'bal.acc':>8} {'macro-F1':>9}  run folder", file=file)
    for label, run in zip(labels, runs):
        row = summarise(run)
        print(f"{label:<{width}} {row['split']:>10} {row['acc']:>7.2f} {row['balanced_acc']:>8.2f} "
              f"{row['macro_f1']:>9.2f}  {run}", file=file)


def plot_curves(runs, path):
    """Validation top-1 per epoch of every run, one line each, into an svg."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # real text in the svg: smaller, searchable
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        rows = read_csv(run / "valid.csv")
        axes.plot([int(r["epoch"]) + 1 for r in rows], [float(r["acc"]) for r in rows],
                  label=f"{run_label(run)} ({run.name})", linewidth=1.5)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title(" / ".join(dict.fromkeys(f"{run.parent.parent.parent.name} on {run.parent.parent.name}" for run in runs)))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg")
    plt.close(figure)


def main(args):
    runs = resolve_runs(args)
    print_table(runs)
    if args.plot:
        plot_curves(runs, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
