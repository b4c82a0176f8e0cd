"""How often do compare.py's seed-aware intervals cover the truth, and how often do its verdicts call a difference
that is not there?  The simulations of docs/evaluation.md.

    python bench/coverage.py                  # every table (about 20 minutes on 2 cores)
    python bench/coverage.py --quick          # a smoke run (the test suite's)

20,000 experiments a cell (``--replicates``), a quarter of that where each experiment scores every image or pairs
16 groups, a twentieth for the diverging-seed rule.

Each cell simulates experiments with a known truth.  The first two tables (``stats.interval_coverage``): ``seeds``
runs whose true accuracy spreads around the method's mean by ``spread`` points, scored on a finite test set whose
noise is the runs' own or shared by all of them (the runs share their test images); they count how often the
interval of the group's mean (and of the paired difference of two groups) contains the truth.  The next two score
image-level predictions through ``stats.accuracy_interval`` itself (``image_level_correct``): balanced accuracy on
classes of 4 test images, and top-1 near 100 %.  Then, over 16 groups of the same method, how often the chosen
group is called better or worse than any other (``family_errors``), and how often the diverging-seed rule raises a
false alarm or finds a seed 10 points off (``divergence_alarms``).  The target is 95 % coverage and at most 5 %
family-wise error; the test suite fails under 93 % coverage.
"""
import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stats  # noqa: E402

SEEDS = (2, 3, 5, 8)
SHARING = {"all shared": 0.0, "mostly shared": 0.5, "mostly own": 2.0}  # noise of a run's errors around its images'
# difficulty: at 0 runs with the same seed effect err on the same images


def image_level_correct(rng, replicates, seeds, class_sizes, class_accuracy, spread, noise):
    """Which images each run gets right, ``replicates x seeds x images``, on a fresh test set per replicate: image j
    has a difficulty d_j shared by every run, and run i is right when ``d_j + noise e_ij`` is below a threshold set
    so that its accuracy on the class's population is the class's accuracy plus its seed effect (standard deviation
    ``spread`` points).  A small ``noise`` makes the runs err on the same images, a large one on their own."""
    sizes = np.asarray(class_sizes)
    accuracy = np.repeat(np.asarray(class_accuracy, dtype=np.float64), sizes)
    difficulty = rng.standard_normal((replicates, 1, len(accuracy)))
    effects = rng.normal(0.0, spread / 100, (replicates, seeds, 1))
    thresholds = ndtri(np.clip(accuracy + effects, 1e-12, 1 - 1e-12)) * math.sqrt(1 + noise ** 2)
    return difficulty + noise * rng.standard_normal((replicates, seeds, len(accuracy))) < thresholds


def population_accuracy(accuracy, spread):
    """The mean over seeds of a class's population accuracy ``min(accuracy + effect, 1)``, effect ~ N(0, spread
    points): the truth the intervals should cover (the cut at 1 lowers it a little near 100 %)."""
    if spread == 0:
        return accuracy
    sd = spread / 100
    return accuracy - ((accuracy - 1) * norm.cdf((accuracy - 1) / sd) + sd * norm.pdf((accuracy - 1) / sd))


def image_level_coverage(seeds, class_sizes, class_accuracy, spread, noise, weighting, replicates, seed=0,
                         pseudo_errors=None, batch=1000):
    """The share of image-level experiments whose interval of the group's mean (``stats.accuracy_interval``, or with
    ``pseudo_errors`` instead of its z^2) covers the truth, and the share of zero-width intervals."""
    rng = np.random.default_rng([seed, seeds, int(spread * 1000), int(noise * 10), len(class_sizes)])
    sizes, accuracy = np.asarray(class_sizes), np.asarray(class_accuracy, dtype=np.float64)
    targets = np.repeat(np.arange(len(sizes)), sizes)
    truth_per_class = np.array([population_accuracy(value, spread) for value in accuracy])
    truth = 100 * float(truth_per_class @ stats.class_weights(targets, weighting))
    covered = zero_width = 0
    for start in range(0, replicates, batch):
        correct = image_level_correct(rng, min(batch, replicates - start), seeds, sizes, accuracy, spread, noise)
        if pseudo_errors is None:
            intervals = stats.accuracy_interval(targets, correct, weighting)
        else:
            variance = (stats.image_variance(targets, correct, weighting)
                        + pseudo_errors * (100 / stats.effective_images(targets, weighting)) ** 2)
            intervals = np.clip(stats.mean_interval(stats.weighted_accuracy(targets, correct, weighting), variance),
                                0, 100)
        covered += int(np.sum((intervals[:, 0] <= truth) & (truth <= intervals[:, 1])))
        zero_width += int(np.sum(intervals[:, 1] - intervals[:, 0] < 1e-9))
    return covered / replicates, zero_width / replicates


FAMILIES = ("Holm, every pair, chosen on valid", "Holm, 15 shown, first group", "Holm, 15 shown, chosen on valid",
            "uncorrected, chosen on valid")


def family_errors(seeds, spread, test_images, groups=16, replicates=20_000, seed=0, accuracy=80.0, agreement=0.7,
                  alpha=0.05):
    """The share of experiments in which a page's verdicts call any difference when none is there, for each way of
    holding them (``FAMILIES``): ``groups`` groups of one method, ``seeds`` runs each (seed effects of ``spread``
    points), a test set of ``test_images`` images whose noise in a difference of two runs,
    ``2 p (1 - p) (1 - agreement) / N``, is half each run's own and half shared by a group's runs.  One group is
    compared, paired by seed, with each other: the first, or the best mean on a validation set of as many images
    that sees the same seed effects (as report.py chooses).  Each pair's verdict-rule p (``stats.verdict_p``) is
    held to ``alpha`` alone or by ``stats.holm`` over the comparisons shown or over every pair of groups."""
    rng = np.random.default_rng([seed, seeds, int(spread * 100), test_images, groups])
    p = accuracy / 100
    run_noise = p * (1 - p) * (1 - agreement) / test_images * 100 ** 2  # half a difference's image variance
    effects = spread * rng.standard_normal((replicates, groups, seeds))
    test = (effects + math.sqrt(run_noise / 2) * rng.standard_normal((replicates, groups, 1))
            + math.sqrt(run_noise / 2) * rng.standard_normal((replicates, groups, seeds)))
    valid = effects + math.sqrt(run_noise) * rng.standard_normal((replicates, groups, seeds))
    chosen = valid.mean(axis=2).argmax(axis=1)
    first, second = np.triu_indices(groups, 1)
    p_values = stats.verdict_p(test[:, first] - test[:, second], run_noise + run_noise / seeds)  # image_variance's
    errors = np.zeros(len(FAMILIES))
    for family, base in zip(p_values, chosen):
        shown = (first == base) | (second == base)
        errors += [any(np.array(stats.holm(family.tolist(), alpha)[1])[shown]),
                   any(stats.holm(family[(first == 0) | (second == 0)].tolist(), alpha)[1]),
                   any(stats.holm(family[shown].tolist(), alpha)[1]), bool(np.any(family[shown] < alpha))]
    return errors / replicates


def normal_tables(replicates, quick):
    spreads, images = ((0.2, 3.0), (1000,)) if quick else ((0.2, 0.5, 1.0, 2.0, 3.0), (1000, 2000, 5000, 10000))
    print(f"coverage (%) of the 95 % seeds+images interval, {replicates:,} simulated experiments a cell; the lowest "
          "over the test-noise splits (all shared / half / each run's own) is shown")
    for difference in (False, True):
        print(f"\n{'paired difference of two groups' if difference else 'mean of a group'}")
        print("seed spread  test images " + " ".join(f"{n:>3} seeds" for n in SEEDS))
        worst = 100.0
        for spread, count in itertools.product(spreads, images):
            cells = [100 * min(stats.interval_coverage(n, spread, count, shared=shared, difference=difference,
                                                       replicates=replicates) for shared in (0.0, 0.5, 1.0))
                     for n in SEEDS]
            worst = min(worst, *cells)
            print(f"{spread:>8.1f} pt  {count:>11,} " + " ".join(f"{cell:>9.1f}" for cell in cells))
        print(f"lowest: {worst:.1f} %")


def small_class_table(replicates, quick):
    classes, accuracy = 100, np.linspace(0.35, 0.95, 100)
    print(f"\nbalanced accuracy on classes of 4 test images ({classes} classes, accuracies 35-95 %), {replicates:,} "
          f"experiments a cell; the lowest over {' / '.join(SHARING)} errors")
    print("seed spread " + " ".join(f"{n:>3} seeds" for n in SEEDS))
    for spread in (0.5,) if quick else (0.5, 2.0):
        cells = [100 * min(image_level_coverage(n, [4] * classes, accuracy, spread, noise, "balanced", replicates)[0]
                           for noise in SHARING.values()) for n in SEEDS]
        print(f"{spread:>8.1f} pt " + " ".join(f"{cell:>9.1f}" for cell in cells))


def boundary_table(replicates, quick):
    print(f"\ntop-1 near 100 % on 1,000 test images (10 classes of 100), {replicates:,} experiments a cell; the lowest "
          f"coverage over {' / '.join(SHARING)} errors, then the largest share of [x, x] intervals")
    print("truth     seed spread " + " ".join(f"{n:>3} seeds" for n in SEEDS))
    for truth, spread in ((0.9997, 0.0),) if quick else itertools.product((0.9997, 0.999, 0.997, 0.99), (0.0, 0.02)):
        found = [[image_level_coverage(n, [100] * 10, [truth] * 10, spread, noise, "top1", replicates)
                  for noise in SHARING.values()] for n in SEEDS]
        print(f"{100 * truth:>6.2f} %  {spread:>7.2f} pt " + " ".join(f"{100 * min(c for c, _ in cell):>9.1f}"
                                                                        for cell in found)
              + "   zero-width: " + " ".join(f"{100 * max(z for _, z in cell):.1f}" for cell in found))
    print("\nthe images' part at the boundary: coverage (%) at 3 seeds whose errors are all shared, no seed spread, "
          "by the pseudo-errors added to its variance (0: the errors' variance alone; z^2 = 3.84: "
          "stats.accuracy_variance)")
    truths = (0.9997, 0.998) if quick else (0.9997, 0.999, 0.998, 0.997, 0.996, 0.995, 0.99)
    print("pseudo-errors " + " ".join(f"{100 * truth:>7.2f} %" for truth in truths))
    for pseudo in (0.0, 1.0, 1.92, 3.84):
        cells = [100 * image_level_coverage(3, [100] * 10, [truth] * 10, 0.0, SHARING["all shared"], "top1",
                                            replicates, pseudo_errors=pseudo)[0] for truth in truths]
        print(f"{pseudo:>13.2f} " + " ".join(f"{cell:>9.1f}" for cell in cells))


def family_table(replicates, quick):
    cells = [(3, 2.0, 10000)] if quick else list(itertools.product(SEEDS, (0.5, 2.0), (1000, 10000)))
    print(f"\nfamily-wise error (%) of the verdicts: 16 groups of one method (no true difference), one group paired "
          f"with the other 15, {replicates:,} experiments a cell")
    print("seeds  seed spread  test images  " + "  ".join(FAMILIES))
    for seeds, spread, count in cells:
        errors = family_errors(seeds, spread, count, replicates=replicates)
        print(f"{seeds:>5}  {spread:>8.1f} pt  {count:>11,}  "
              + "  ".join(f"{100 * error:>{len(name)}.1f}" for error, name in zip(errors, FAMILIES)))


def divergence_alarms(groups, seeds, spread, valid_images, replicates, seed=0, accuracy=80.0, diverged=10.0):
    """How often ``stats.diverging`` flags a run among ``groups`` groups of ``seeds`` ordinary runs (validation
    accuracies spread ``spread`` points around ``accuracy``, its floor the standard error of ``valid_images``
    images), and how often it flags one run ``diverged`` points below its group: ``(false alarms, power)``."""
    rng = np.random.default_rng([seed, groups, seeds, int(spread * 10), valid_images])
    floor = 100 * math.sqrt(accuracy / 100 * (1 - accuracy / 100) / valid_images)
    alarms = found = 0
    for _ in range(replicates):
        values = accuracy + spread * rng.standard_normal((groups, seeds))
        alarms += any(map(any, stats.diverging(values, [floor] * groups)[0]))
        values[0, 0] -= diverged
        found += stats.diverging(values, [floor] * groups)[0][0][0]
    return alarms / replicates, found / replicates


def divergence_table(replicates, quick):
    cells = [(1, 3, 1.0, 1000)] if quick else list(itertools.product((1, 2, 16), (3, 5, 10), (0.5, 1.0, 3.0),
                                                                      (1000, 10000)))
    print(f"\na diverging seed (stats.diverging): the share of tables with a false alarm among ordinary seeds, then "
          f"the share of one seed 10 points below its group found, {replicates:,} tables a cell")
    print("groups  seeds  seed spread  valid images  false alarms  found")
    for groups, seeds, spread, images in cells:
        alarms, found = divergence_alarms(groups, seeds, spread, images, replicates)
        print(f"{groups:>6}  {seeds:>5}  {spread:>8.1f} pt  {images:>12,}  {100 * alarms:>11.1f}%  "
              f"{100 * found:>4.0f}%")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    replicates = 300 if args.quick else args.replicates
    normal_tables(replicates, args.quick)
    image_level = replicates if args.quick else replicates // 4  # each of these experiments scores every image
    small_class_table(image_level, args.quick)
    boundary_table(image_level, args.quick)
    family_table(image_level, args.quick)
    divergence_table(image_level // 5, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
