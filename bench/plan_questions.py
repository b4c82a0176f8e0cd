"""Seconds a plan spends asking about its runs: the questions 3_run.sh asks (``runs.py find`` for each row and seed)
answered (a) by one ``runs.py serve`` process, as the plan asks them now, and (b) by one ``python runs.py find``
process each, as it asked them before.  The answers must be the same; b/a is what the server saves.

    python bench/plan_questions.py            # the demo plan's rows ERM, LA, CCE, seeds 0-2, trained 1 epoch first
    python bench/plan_questions.py --quick    # a smoke test: row ERM, seed 0, nothing trained: "no run"

It works in a temporary folder (the demo's digits, data_split.py --demo) and prints the ratio measured in one run.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS, SEEDS = "ERM LA CCE:--ccegamma=2", (0, 1, 2)


def plan(folder, rows, **variables):
    env = {**os.environ, "PYTHON": sys.executable, "REPORT": "", "EPOCHS": "1", "OBJECTIVES": rows, **variables}
    return subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=folder, env=env, capture_output=True, text=True,
                          check=True).stdout


def questions(folder, rows, seeds):
    """Each row's and seed's find command line, as 3_run.sh builds it (TAGS=1 gives each row's flags for seed 0)."""
    asked = []
    for line in plan(folder, rows, TAGS="1").splitlines():
        tag, _, dataset, _, flags = line.split("\t")
        for seed in seeds:
            row = [f"--seed={seed}" if flag == "--seed=0" else flag for flag in flags.split("\x1f")]
            asked.append(["find", "--model_index=41", f"--dataset={dataset}", f"--tag={tag}", f"--seed={seed}", "--",
                          *row])
    return asked


def by_server(folder, asked):
    text = "".join("\x1f".join(question) + "\n" for question in asked)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "runs.py"), "serve"], cwd=folder, input=text,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.splitlines()


def by_processes(folder, asked):
    answers = []
    start = time.perf_counter()
    for question in asked:
        done = subprocess.run([sys.executable, str(ROOT / "runs.py"), *question], cwd=folder, capture_output=True,
                              text=True)
        answers.append(f"{done.returncode}\x1f{done.stdout.strip()}")
    return time.perf_counter() - start, answers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="train nothing: every question finds no run")
    args = parser.parse_args()
    rows, seeds = ("ERM", SEEDS[:1]) if args.quick else (ROWS, SEEDS)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, str(ROOT / "data_split.py"), "--demo"], cwd=folder, capture_output=True,
                       check=True)
        if not args.quick:
            plan(folder, rows, SEEDS=" ".join(map(str, seeds)))
        asked = questions(folder, rows, seeds)
        a, served = by_server(folder, asked)
        b, processes = by_processes(folder, asked)
    if served != processes:
        sys.exit(f"error: the answers differ:\n  serve: {served}\n  find:  {processes}")
    found = sum(answer.split("\x1f")[0] == "0" for answer in served)
    print(f"{len(asked)} questions ({found} found a run): (a) one runs.py serve {a:.1f} s, "
          f"(b) a runs.py find process each {b:.1f} s; b/a = {b / a:.1f}")


if __name__ == "__main__":
    main()
