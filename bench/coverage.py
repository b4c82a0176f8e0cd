"""How often do compare.py's seed-aware intervals cover the truth?  The simulation of docs/evaluation.md.

    python bench/coverage.py                  # the full table, 20,000 experiments a cell (about a minute)
    python bench/coverage.py --quick          # a smoke run (the test suite's)

Each cell simulates experiments with a known truth (``stats.interval_coverage``): ``seeds`` runs whose true
accuracy spreads around the method's mean by ``spread`` points, scored on a finite test set whose noise is the
runs' own or shared by all of them (the runs share their test images), and counts how often the interval of the
group's mean (and of the paired difference of two groups) contains the truth.  The target is 95 %; the test suite
fails under 93 %.
"""
import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stats  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    replicates = 500 if args.quick else args.replicates
    seeds, spreads, images = (2, 3, 5, 8), (0.2, 0.5, 1.0, 2.0, 3.0), (1000, 2000, 5000, 10000)
    if args.quick:
        spreads, images = (0.2, 3.0), (1000,)
    print(f"coverage (%) of the 95 % seeds+images interval, {replicates:,} simulated experiments a cell; the lowest "
          "over the test-noise splits (all shared / half / each run's own) is shown")
    for difference in (False, True):
        print(f"\n{'paired difference of two groups' if difference else 'mean of a group'}")
        print("seed spread  test images " + " ".join(f"{n:>3} seeds" for n in seeds))
        worst = 100.0
        for spread, count in itertools.product(spreads, images):
            cells = [100 * min(stats.interval_coverage(n, spread, count, shared=shared, difference=difference,
                                                       replicates=replicates) for shared in (0.0, 0.5, 1.0))
                     for n in seeds]
            worst = min(worst, *cells)
            print(f"{spread:>8.1f} pt  {count:>11,} " + " ".join(f"{cell:>9.1f}" for cell in cells))
        print(f"lowest: {worst:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
