"""Run records: a run's evidence, small enough to commit, so that a table outlives the machine that trained it.

    python records.py export logs/SimpleCNN/fmnist-lt/ERM/2026-12-07-07-43-05 ...   # into results/
    python records.py export --all                  # every evaluated run under logs/ whose record is missing or old
    python compare.py --logs_dir results --dataset fmnist-lt --model_index 41 --datetime all   # read records

A record is its run folder without the heavy files, at the same place under its own root
(``results/<Model>/<dataset>/<objective>/<start time>/``):

- ``config.json``, ``train.csv``, ``valid.csv``, and each evaluation's ``<split>[_last]_metrics.json``, byte for
  byte as the run wrote them;
- each evaluation's ``<split>[_last]_predictions.npz`` in compact form: per image its path, target, predicted class,
  top-1 probability (float16: what the reliability diagram reads) and the classes predicted after each test-time
  adjustment; the full probabilities stay in the run folder;
- ``record.json``: what the checkpoint held that the tables and the report read (class names, training counts,
  image size, the chosen epoch), the SHA-256 of the run's own predictions file (which its metrics file names) and
  of the compact one, and the SHA-256 of every other file of the record.

Never a checkpoint, and at most ``MAX_RECORD_BYTES``.  ``compare.py`` and ``report.py`` read records as they read
run folders (``--logs_dir results``), with the metrics checked against the predictions; a record whose files no
longer match ``record.json`` is named, not compared (``runs.verify_record``).  A second stage's record needs its
first stage's (the group of a second stage is named by the settings of the run it started from): exporting one
exports the other.
"""
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from runs import (CHECKPOINTS, CONFIG, RECORD, RECORD_FORMAT, RUN_NAME, TRAIN_CSV, VALID_CSV, best_checkpoint_path,
                  checked_metrics, file_sha256, load_predictions, load_run_checkpoint, metrics_file,
                  predictions_file, run_is_complete, run_settings)
from utils import ArgumentParser, UserError, WriteError, atomic_write, run_cli, write_json_atomic

MAX_RECORD_BYTES = 300_000
SPLITS = ("test", "valid")


def get_args_parser():
    parser = ArgumentParser(description="Write the records of evaluated runs (results/, committed) from their run "
                                        "folders (logs/).")
    parser.add_argument("command", choices=("export",))
    parser.add_argument("runs", nargs="*", help="run folders to export")
    parser.add_argument("--all", action="store_true",
                        help="export every evaluated run under --logs_dir whose record is missing or older than it")
    parser.add_argument("--logs_dir", default="logs", help="with --all: the run folders' root")
    parser.add_argument("--to", default="results", help="the records' root (default results)")
    return parser


def record_path(run_dir, to_root):
    """Where a run's record goes: the run's last four folders (model, dataset, objective, start time) under the
    records' root."""
    run_dir = Path(run_dir)
    return Path(to_root).joinpath(*run_dir.parts[-4:])


def evaluations(run_dir):
    """``[(split, checkpoint)]`` of the evaluations 2_test.py saved in a run folder (metrics and predictions)."""
    return [(split, checkpoint) for split in SPLITS for checkpoint in CHECKPOINTS
            if (run_dir / metrics_file(split, checkpoint)).is_file()
            and (run_dir / predictions_file(split, checkpoint)).is_file()]


def compact_predictions(run_dir, split, checkpoint):
    """The arrays of a record's predictions file, from the run's own (``runs.load_predictions`` checks that it
    belongs to the metrics beside it)."""
    load_predictions(run_dir, split, checkpoint)
    with np.load(run_dir / predictions_file(split, checkpoint)) as saved:
        targets = saved["targets"]
        if "probs" in saved:
            probabilities = saved["probs"]
            predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
        else:
            predicted, confidence = saved["top_classes"][:, 0], saved["top_probs"][:, 0]
        classes = len(saved["classes"])
        kind = np.uint8 if classes <= 2**8 else np.uint16 if classes <= 2**16 else np.int64
        arrays = {"paths": saved["paths"], "targets": targets.astype(kind), "classes": saved["classes"],
                  "predicted": predicted.astype(kind), "confidence": confidence.astype(np.float16)}
        for name in saved.files:
            if name.endswith("_predicted"):
                arrays[name] = saved[name].astype(kind)
    return arrays


def export_run(run_dir, to_root="results"):
    """Write (or replace) the record of one evaluated run; returns its path.  A run that is not complete, not
    evaluated, or whose metrics disagree with its predictions is refused in one line, as is a record over
    ``MAX_RECORD_BYTES``; an earlier record stays as it was until the new one is whole."""
    run_dir = Path(run_dir)
    if not RUN_NAME.match(run_dir.name) or not (run_dir / CONFIG).is_file():
        raise UserError(f"{run_dir} is not a run folder (logs/<Model>/<dataset>/<objective>/<start time>/ with "
                        f"{CONFIG})")
    if (run_dir / RECORD).is_file():
        raise UserError(f"{run_dir} is a record already; export the run folder it came from")
    if not run_is_complete(run_dir):
        raise UserError(f"{run_dir} has not finished training; resume it (1_train.py --resume {run_dir}) first")
    found = evaluations(run_dir)
    if not found:
        raise UserError(f"{run_dir} has no evaluation to record; run 2_test.py on it first")
    checkpoint = best_checkpoint_path(run_dir)
    if checkpoint is None:
        raise UserError(f"{run_dir} has no best checkpoint, whose classes and counts a record keeps")
    state = load_run_checkpoint(checkpoint)
    for split, kind in found:
        checked_metrics(run_dir, split, kind)  # an edited metrics file is not recorded
    target = record_path(run_dir, to_root)
    if target.resolve() == run_dir.resolve():
        raise UserError(f"--to {to_root}: the record of {run_dir} would replace the run folder itself (the records' "
                        "root is the runs' root); give another folder, e.g. --to results")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name in (CONFIG, TRAIN_CSV, VALID_CSV):
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, staging / name)
        predictions = {}
        for split, kind in found:
            shutil.copyfile(run_dir / metrics_file(split, kind), staging / metrics_file(split, kind))
            with atomic_write(staging / predictions_file(split, kind), "wb") as file:
                np.savez_compressed(file, **compact_predictions(run_dir, split, kind))
            predictions[predictions_file(split, kind)] = {
                "sha256": file_sha256(staging / predictions_file(split, kind)),
                "source_sha256": file_sha256(run_dir / predictions_file(split, kind))}
        write_json_atomic({
            "format": RECORD_FORMAT, "source": str(run_dir),
            "exported": datetime.datetime.now().replace(microsecond=0).isoformat(),
            "classes": list(state["classes"]), "class_counts": state.get("class_counts"),
            "image_size": list(state["image_size"]), "checkpoint": checkpoint.name, "epoch": state.get("epoch"),
            "predictions": predictions,
            "files": {path.name: file_sha256(path) for path in sorted(staging.iterdir())
                      if path.name not in predictions}}, staging / RECORD)
        size = sum(path.stat().st_size for path in staging.iterdir())
        if size > MAX_RECORD_BYTES:
            raise UserError(f"the record of {run_dir} would take {size / 1000:.0f} KB, over the "
                            f"{MAX_RECORD_BYTES / 1000:.0f} KB a record may; it was not written")
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    except OSError as error:
        raise WriteError(f"cannot write the record {target}: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def first_stage(run_dir):
    """The run folder a second stage started from (its ``--init_from`` checkpoint's folder), or None."""
    start = run_settings(run_dir).get("init_from")
    return Path(start).parent if start else None


def is_current(run_dir, to_root):
    """Whether the run has a record made from its present files: the same predictions, and the same config, logs
    and metrics (an evaluation run again, under the test priors say, writes the same predictions but new metrics)."""
    record = record_path(run_dir, to_root) / RECORD
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    found = evaluations(run_dir)
    sources = {name: entry.get("source_sha256") for name, entry in saved.get("predictions", {}).items()}
    predictions = {predictions_file(split, kind): file_sha256(run_dir / predictions_file(split, kind))
                   for split, kind in found}
    copied = [name for name in (CONFIG, TRAIN_CSV, VALID_CSV) if (run_dir / name).is_file()]
    files = {name: file_sha256(run_dir / name) for name in [*copied, *(metrics_file(*each) for each in found)]}
    return sources == predictions and saved.get("files") == files


def export(runs, to_root="results", quiet_current=False):
    """Export ``runs`` and the first stages they started from; returns the records written."""
    written, seen = [], set()
    queue = [Path(run) for run in runs]
    while queue:
        run = queue.pop(0)
        if run.resolve() in seen:
            continue
        seen.add(run.resolve())
        start = first_stage(run)
        if start is not None:
            if not start.is_dir():
                raise UserError(f"{run} started from {start}, which is not here; a second stage's record needs its "
                                f"first stage's")
            queue.append(start)
        if is_current(run, to_root):
            if not quiet_current:
                print(f"current already: {record_path(run, to_root)}")
            continue
        path = export_run(run, to_root)
        size = sum(item.stat().st_size for item in path.iterdir())
        print(f"wrote {path} ({size / 1000:.0f} KB)")
        written.append(path)
    return written


def evaluated_runs(logs_dir):
    """Every complete run under ``logs_dir`` with a saved evaluation."""
    return [config.parent for config in sorted(Path(logs_dir).glob(f"*/*/*/*/{CONFIG}"))
            if RUN_NAME.match(config.parent.name) and run_is_complete(config.parent) and evaluations(config.parent)]


def main(args):
    if bool(args.runs) == bool(args.all):
        raise UserError("name the run folders to export, or give --all")
    runs = evaluated_runs(args.logs_dir) if args.all else args.runs
    written = export(runs, args.to, quiet_current=args.all)
    print(f"{len(written)} record(s) written under {args.to}/" if written else "every record is current")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
