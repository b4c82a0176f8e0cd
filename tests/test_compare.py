"""compare.py: runs grouped over seeds, mean +- std, the markdown table and the validation-curve figure."""
import json
import math
import statistics

import pytest

from conftest import call, run

SETTINGS = {"model_index": 41, "dataset": "tiny", "lr": 0.1, "epochs": 3, "ccegamma": 5.0, "drw": False,
            "data_dir": "a_datasets", "workers": None}


def fake_run(root, objective, name, accs, test=None, seed=0, dataset="tiny", **settings):
    run_dir = root / "logs" / "SimpleCNN" / dataset / objective / name
    run_dir.mkdir(parents=True)
    rows = ["epoch,loss,acc,top5acc,lr,balanced_acc,macro_f1,many_acc,medium_acc,few_acc"]
    rows += [f"{i},1.0,{acc},100,0.1,{acc - 1},{acc - 2},{acc},{acc},{acc - 3}" for i, acc in enumerate(accs)]
    (run_dir / "valid.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "train.csv").write_text("epoch,loss,acc,top5acc,lr,time_s\n" +
                                       "".join(f"{i},1,50,90,0.1,30\n" for i in range(len(accs))))
    args = {**SETTINGS, "objective": objective, "seed": seed, "data_dir": f"/somewhere/{seed}", **settings}
    (run_dir / "config.json").write_text(json.dumps({"args": args, "environment": {}}))
    if test is not None:
        (run_dir / "test_metrics.json").write_text(json.dumps(test))
    return run_dir


def metrics(acc, balanced, few=float("nan")):
    return {"acc": acc, "balanced_acc": balanced, "macro_f1": balanced - 1, "many_acc": 90.0, "medium_acc": 60.0,
            "few_acc": few}


def test_seeds_are_grouped_with_mean_and_std(tmp_path):
    balanced = [70.0, 72.0, 77.0]
    for seed, value in enumerate(balanced):
        # ccegamma is not ERM's setting: runs made under another default still form one group
        fake_run(tmp_path, "ERM", f"2026-01-01-00-00-0{seed}", [50, 60], metrics(80 + seed, value, 10.0 * seed),
                 seed=seed, ccegamma=float(seed))
    for seed in (0, 1):
        fake_run(tmp_path, "CCE", f"2026-01-01-00-01-0{seed}", [50], metrics(81, 74.5 + seed), seed=seed, ccegamma=1.0)
    fake_run(tmp_path, "CCE", "2026-01-01-00-02-00", [50], metrics(70, 60.0), ccegamma=5.0)
    fake_run(tmp_path, "LDAM", "2026-01-01-00-03-00", [50], metrics(70, 66.0), drw=True)
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", "--markdown=out/table.md",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()[1:5]}
    assert set(rows) == {"ERM", "CCE ccegamma=1", "CCE ccegamma=5", "LDAM DRW"}
    erm = rows["ERM"].split()
    assert erm[1:3] == ["3", "test"]
    std = statistics.stdev(balanced)  # sample standard deviation: sqrt(26 / 2)
    assert std == pytest.approx(math.sqrt(13))
    assert "81.00 ± 1.00" in rows["ERM"] and f"73.00 ± {std:.2f}" in rows["ERM"] and "10.00 ± 10.00" in rows["ERM"]
    assert "75.00 ± 0.71" in rows["CCE ccegamma=1"] and " 2 " in rows["CCE ccegamma=1"]
    assert "60.00 " in rows["CCE ccegamma=5"] and "±" not in rows["CCE ccegamma=5"].split("  ", 1)[1].split()[3]
    assert rows["ERM"].split()[-3] == "1.0"  # minutes per run: 2 epochs of 30 s
    table = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert table[0].startswith("| objective | n | split | top-1 | bal. acc | macro-F1 | many | medium | few |")
    assert f"| ERM | 3 | test | 81.00 ± 1.00 | 73.00 ± {std:.2f} | 72.00 ± {std:.2f} | 90.00 ± 0.00 |" in table[2]


def test_table_and_figure_of_latest_runs(tmp_path):
    erm = fake_run(tmp_path, "ERM", "2026-01-01-00-00-00", [10.0, 30.0, 20.0], test=metrics(77.5, 50.0))
    fake_run(tmp_path, "CCE", "2026-01-01-00-00-00", [5.0])
    cce = fake_run(tmp_path, "CCE", "2026-01-02-00-00-00", [15.0, 45.0])
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                 "--plot=out/curves.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:5] == ["ERM", "1", "test", "77.50", "50.00"] and str(erm.relative_to(tmp_path)) in lines[1]
    # no test metrics yet: the best validation epoch of the latest CCE run
    assert lines[2].split()[:7] == ["CCE", "ccegamma=5", "1", "best", "valid", "45.00", "44.00"]
    assert str(cce.relative_to(tmp_path)) in lines[2]
    svg = (tmp_path / "out" / "curves.svg").read_text()
    assert "ERM (2026-01-01-00-00-00)" in svg and "CCE ccegamma=5 (2026-01-02-00-00-00)" in svg


def test_unknown_run_folder(tmp_path):
    result = run("compare.py", "--runs", str(tmp_path / "nothing"), cwd=tmp_path)  # a real process
    assert result.returncode == 2 and "not a training run folder" in result.stderr


def save_predictions(run_dir, targets, predicted, paths=None, classes=3):
    import numpy as np
    probs = np.full((len(targets), classes), 0.1, dtype=np.float32)
    probs[np.arange(len(targets)), predicted] = 0.8
    paths = paths if paths is not None else [f"test/{t}/{i}.png" for i, t in enumerate(targets)]
    np.savez_compressed(run_dir / "test_predictions.npz", paths=np.array(paths), targets=np.array(targets),
                        probs=probs, classes=np.array(["a", "b", "c"]))
    import stats  # the metrics file says what the predictions say, as 2_test.py writes them (compare checks it)
    computed = stats.classification_metrics(np.array(targets), np.array(predicted), classes)
    path = run_dir / "test_metrics.json"
    written = json.loads(path.read_text()) if path.is_file() else {}
    written.update({key: computed[key] for key in ("acc", "balanced_acc", "macro_f1")})
    path.write_text(json.dumps(written))


TARGETS = [0] * 10 + [1] * 10 + [2] * 10


def paired_runs(tmp_path):
    import numpy as np
    a = np.array(TARGETS)
    a[25:] = 0  # A misses half of class 2
    b = np.array(TARGETS)
    b[0] = 1  # B misses one image of class 0
    runs = []
    for objective, predicted in (("ERM", a), ("CCE", b)):
        run_dir = fake_run(tmp_path, objective, "2026-01-01-00-00-00", [50], metrics(80, 80))
        save_predictions(run_dir, TARGETS, predicted)
        runs.append((run_dir, predicted))
    return runs


def test_two_runs_are_compared_pairwise(tmp_path):
    import numpy as np
    import stats
    (run_a, a), (run_b, b) = paired_runs(tmp_path)
    result = call("compare.py", "--runs", run_a, run_b, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    targets = np.array(TARGETS)
    difference, (low, high) = stats.paired_difference(targets, a, b)
    assert difference == pytest.approx(100 * (5 / 10 - 1 / 10) / 3)
    _, _, p_value = stats.mcnemar_exact(a == targets, b == targets)
    assert p_value == pytest.approx(2 * (1 + 6) / 2**6)  # 1 image right only in A, 5 only in B
    assert "CCE (2026-01-01-00-00-00) minus ERM (2026-01-01-00-00-00), paired on the same 30 test images" in result.stdout
    assert (f"balanced acc {difference:+.2f} points, 95% CI [{low:+.2f}, {high:+.2f}] (test images); top-1: 5 images "
            f"right only in B, 1 only in A, exact McNemar p = {p_value:.3g}") in result.stdout
    assert "for a claim about the methods, compare groups of seeds with --paired" in result.stdout
    row = [line for line in result.stdout.splitlines() if line.startswith("ERM")][0]
    interval = stats.bootstrap_intervals(targets, a)["balanced_acc"]
    assert f"[{interval[0]:.2f}, {interval[1]:.2f}]" in row and row.count("n = 1") == 2  # one run: images only
    assert "with n = 1 only the images can be resampled" in result.stdout


def test_runs_on_different_images_are_refused(tmp_path):
    (run_a, a), (run_b, b) = paired_runs(tmp_path)
    save_predictions(run_b, TARGETS, b, paths=[f"test/x/{i}.png" for i in range(30)])
    result = call("compare.py", "--runs", run_a, run_b, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "were evaluated on different images" in lines[0]


def test_groups_of_seeds_are_paired_by_seed(tmp_path):
    import numpy as np
    import stats
    predictions = {}
    for objective, misses in (("ERM", 4), ("CCE", 1)):
        for seed in (0, 1, 2):
            predicted = np.array(TARGETS)
            predicted[20:20 + misses + seed] = 0
            run_dir = fake_run(tmp_path, objective, f"2026-01-01-00-0{seed}-00", [50], metrics(80, 80), seed=seed)
            save_predictions(run_dir, TARGETS, predicted)
            predictions[objective, seed] = predicted
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE", "--datetime=all",
                  "--paired", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    targets = np.array(TARGETS)
    expected = stats.paired_over_seeds(targets, [predictions["ERM", s] for s in range(3)],
                                       [predictions["CCE", s] for s in range(3)])
    assert expected["differences"] == pytest.approx([10.0] * 3) and expected["t"] == pytest.approx([10.0, 10.0])
    out = result.stdout
    assert "mean over 3 seed pairs: balanced acc +10.00 points (per pair +10.00, +10.00, +10.00" in out
    low, high = expected["seeds_and_images"]
    assert (f"95% CI, seeds and test images (Student's t on the seeds, the images' variance added): "
            f"[{low:+.2f}, {high:+.2f}]") in out
    assert "95% CI, Student's t over the 3 per-pair differences: [+10.00, +10.00]" in out
    low, high = expected["images"]
    assert f"95% CI, test images only, the trained runs held fixed: [{low:+.2f}, {high:+.2f}]" in out
    assert ("exact sign-flip test over the 3 pairs: p = 0.25 (the smallest p 3 pairs allow: 0.25; 6 pairs can reach "
            "0.05)") in out
    assert ("seeds needed for the seeds+images interval to exclude 0 at this mean, spread and images' variance: "
            "about 2 (3 is enough") in out
    assert f"verdict rule: p = {expected['p_verdict']:.3g}" in out
    assert "-> CCE ccegamma=5 is better than ERM here: both intervals that include the seed spread exclude 0\n" in out
    assert out.count(" vs ") == 3
    assert "CCE ccegamma=5 minus ERM, paired on the same 30 test images" in out  # group labels
    table = {line.split("  ")[0].strip(): line for line in out.splitlines()[1:3]}
    seeds = stats.seed_intervals(targets, [predictions["ERM", s] for s in range(3)])["balanced_acc"]
    assert f"[{seeds[0]:.2f}, {seeds[1]:.2f}]" in table["ERM"] and "n = 1" not in table["ERM"]
    alone = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "--datetime=all",
                "--paired", cwd=tmp_path)
    assert alone.returncode == 2
    assert "--paired compares groups of runs, each later one against the first; these runs form 1" in alone.stderr


def seed_groups(tmp_path, misses):
    """Fake groups of three seeds each on TARGETS: ``{objective: [misses of seed 0, 1, 2]}`` images of class 2
    predicted wrong; returns the predictions by (objective, seed)."""
    import numpy as np
    predictions = {}
    for objective, counts in misses.items():
        for seed, count in enumerate(counts):
            predicted = np.array(TARGETS)
            predicted[20:20 + count] = 0
            run_dir = fake_run(tmp_path, objective, f"2026-01-01-00-0{seed}-00", [50 + count], metrics(80, 80),
                               seed=seed)
            save_predictions(run_dir, TARGETS, predicted)
            predictions[objective, seed] = predicted
    return predictions


def test_several_groups_are_paired_with_the_first_and_held_together_by_holm(tmp_path):
    """--paired with three groups: each later group minus the first; --holm holds the two verdicts as one family
    (stats.holm on their verdict-rule p-values, here 0.032 and 0.044: each below 0.05 alone, the smaller not below
    0.05 / 2), names its size beside each verdict and in the markdown."""
    import numpy as np
    import stats
    predictions = seed_groups(tmp_path, {"ERM": [6, 7, 8], "CCE": [1, 2, 5], "FL": [3, 5, 6]})
    targets = np.array(TARGETS)
    p_values = [stats.paired_over_seeds(targets, [predictions["ERM", s] for s in range(3)],
                                        [predictions[objective, s] for s in range(3)])["p_verdict"]
                for objective in ("CCE", "FL")]
    levels, called = stats.holm(p_values)
    assert max(p_values) < 0.05 and called == [False, False]
    for flags in ([], ["--holm"]):
        result = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE", "FL",
                      "--datetime=all", "--paired", *flags, "--markdown=t.md", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        out, markdown = result.stdout, (tmp_path / "t.md").read_text()
        assert "CCE ccegamma=5 minus ERM, paired" in out and "FL minus ERM, paired" in out
        assert "| CCE ccegamma=5 minus ERM | 3 |" in markdown and "| FL minus ERM | 3 |" in markdown
        if flags:
            assert out.count("Holm's correction over the 2 comparisons shown") == 2
            assert markdown.count("Holm's correction over the 2 comparisons shown") == 2
            assert f"held to p < {levels[0]:.2g}" in out and f"held to p < {levels[1]:.2g}" in out
            # 0.044 is below its level 0.05, but Holm's steps stopped at 0.032, not below 0.025
            assert "is below its level 0.05, but Holm's steps stopped at a smaller p that was not below its own" in out
            words = ["better" if call_ else "no difference shown" for call_ in called]
        else:
            assert out.count("one of 2 comparisons shown, each at p < 0.05, not corrected for the family") == 2
            words = ["better" if p < 0.05 else "no difference shown" for p in p_values]
        cells = {line.split("|")[1].strip(): line.split("|")[-3].strip() for line in markdown.splitlines()
                 if " minus ERM |" in line}
        assert [cells["CCE ccegamma=5 minus ERM"], cells["FL minus ERM"]] == words


def test_hold_together_gives_each_verdict_its_holm_level_and_seeds_needed():
    """Three comparisons (p 0.004, 0.03, 0.2) and two not shown (p 0.001, 0.5): Holm over the five calls 0.001 and
    0.004 (below 0.05/5 and 0.05/4) and stops at 0.03 >= 0.05/3.  A called pair's seeds needed is counted at its
    own level (never more than its pairs); an uncalled one's at 0.05/5, which calls it whatever the others do."""
    import results
    import stats

    def pair(p_value, differences, image_var=0.01):
        return {"seeds": {"p_verdict": p_value, "mean": float(sum(differences) / len(differences)),
                          "differences": differences, "image_var": image_var}}
    pairs = [pair(0.004, [2.0, 2.2, 2.1]), pair(0.03, [1.0, 1.6, 0.7]), pair(0.2, [0.2, 0.9, -0.3]), {"runs": []}]
    results.hold_together(pairs, others=[0.001, 0.5])
    assert [found["verdict"] for found in pairs[:3]] == ["better", "no difference shown", "no difference shown"]
    assert [found["family"]["level"] for found in pairs[:3]] == pytest.approx([0.05 / 4, 0.05 / 3, 0.05 / 2])
    assert pairs[0]["family"]["size"] == 5 and pairs[0]["family"]["shown"] == 3 and "family" not in pairs[3]
    assert pairs[0]["seeds"]["seeds_needed"] == stats.seeds_needed([2.0, 2.2, 2.1], 0.01, 1 - 0.05 / 4) <= 3
    assert pairs[1]["seeds"]["seeds_needed"] == stats.seeds_needed([1.0, 1.6, 0.7], 0.01, 1 - 0.05 / 5)
    assert "Holm's correction over the 5 comparisons of the family (3 shown)" in results.family_words(pairs[0])
    first, second = results.hold_together([pair(0.03, [1.0, 1.6, 0.7]), pair(0.04, [1.0, 1.6, 0.7])])
    assert not first["family"]["stopped"] and second["family"]["stopped"]  # 0.04 < 0.05, after 0.03 >= 0.025
    alone = results.hold_together([pair(0.03, [1.0, 1.6, 0.7])], holm=True)[0]
    assert alone["verdict"] == "better" and results.family_words(alone) == "" and alone["family"]["level"] == 0.05
    assert results.needed_cell({"seeds_needed": math.inf}) == "more test images, not seeds"
    assert results.needed_cell({"seeds_needed": None}) == "> 1000"


def test_a_diverging_seed_is_flagged_in_the_table_and_its_markdown(tmp_path):
    """One ERM seed's best validation top-1 is 30 points under the others': compare.py names it under the table and
    in the markdown; the CCE seeds, 0.2-0.4 points apart, are not flagged."""
    import results
    for seed, best in enumerate((80.0, 80.4, 50.0)):
        fake_run(tmp_path, "ERM", f"2026-01-01-00-0{seed}-00", [40.0, best], seed=seed)
    for seed, best in enumerate((81.0, 81.2, 80.8)):
        fake_run(tmp_path, "CCE", f"2026-01-01-00-0{seed}-00", [40.0, best], seed=seed)
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", "--markdown=t.md",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    flagged = [line for line in result.stdout.splitlines() if line.startswith("warning: diverging seed?")]
    assert len(flagged) == 1 and "ERM: " in flagged[0]
    assert "2026-01-01-00-02-00 has validation top-1 50.00" in flagged[0]
    assert "30.00 points from its group's median 80.00" in flagged[0]
    assert "**Warning**: diverging seed? ERM: " in (tmp_path / "t.md").read_text()
    groups = results.group_runs(results.find_runs(tmp_path / "logs", dataset="tiny", model_index=41, datetime="all"))
    assert [entry["value"] for entry in results.diverging_runs(groups)] == [50.0]


def test_a_prior_the_test_images_cannot_express_is_one_error_line():
    import numpy as np
    import results
    from conftest import script
    from utils import UserError
    counts, targets = [500, 100, 10], np.array([0, 0, 1, 1])
    with pytest.raises(UserError, match="of its mass on 1 class"):
        results.prior_on(targets, results.stats.test_prior("backward-50", counts))
    with pytest.raises(UserError, match="--test_prior forward-50: the test prior puts 1.72 % of its mass"):
        script("2_test").shifted_priors("all", counts, targets)  # refused before any evaluation, even a little mass
    assert list(script("2_test").shifted_priors("uniform", counts, [0, 1, 2])) == ["uniform"]


def test_options_the_objective_reads_split_groups_and_the_others_do_not(tmp_path):
    """cb_beta is read by ERM only with --class_balanced: two class-balanced ERM groups with different betas stay
    apart, while plain ERM runs that differ only in the unread cb_beta (or in CCE's ccegamma) form one group."""
    for seed, beta in enumerate((0.99, 0.99, 0.9999, 0.9999)):
        fake_run(tmp_path, "ERM", f"2026-01-01-00-00-0{seed}", [50], metrics(80, 70 + seed), seed=seed,
                 class_balanced=True, cb_beta=beta)
    for seed, beta in enumerate((0.99, 0.9999)):
        fake_run(tmp_path, "ERM", f"2026-01-01-00-01-0{seed}", [50], metrics(80, 60 + seed), seed=seed,
                 class_balanced=False, cb_beta=beta, ccegamma=float(seed))
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line.split() for line in result.stdout.splitlines()[1:4]}
    assert set(rows) == {"ERM cb_beta=0.99 class_balanced=True", "ERM cb_beta=0.9999 class_balanced=True",
                         "ERM class_balanced=False"}
    assert rows["ERM cb_beta=0.99 class_balanced=True"][3:6] == ["2", "test", "80.00"]
    assert "70.50" in rows["ERM cb_beta=0.99 class_balanced=True"]  # balanced 70 and 71
    assert "72.50" in rows["ERM cb_beta=0.9999 class_balanced=True"]
    assert rows["ERM class_balanced=False"][2:4] == ["2", "test"] and "60.50" in rows["ERM class_balanced=False"]


def test_setting_key_follows_the_table_of_objectives():
    import criterion
    import results as compare
    base = {"lr": 0.1, "seed": 3, "workers": 2, "ccegamma": 0.5, "cb_beta": 0.99, "class_balanced": False,
            "la_tau": 1.0, "label_smoothing": 0.0}
    keys = dict(compare.setting_key("ERM", base))
    assert "seed" not in keys and "workers" not in keys  # bookkeeping
    assert set(keys) == {"lr", "class_balanced", "label_smoothing"}  # what ERM reads without --class_balanced
    assert "cb_beta" in dict(compare.setting_key("ERM", {**base, "class_balanced": True}))
    assert "cb_beta" in dict(compare.setting_key("CB", base))  # CB reads beta always
    assert set(dict(compare.setting_key("LA", base))) == {"lr", "la_tau"}
    for name, entry in criterion.OBJECTIVES.items():
        read = set(dict(compare.setting_key(name, base))) - {"lr"}
        assert read == set(entry.reads(base)) & set(base), name


def test_select_on_valid_reads_only_validation_records(tmp_path, monkeypatch):
    """The group with the best validation balanced accuracy (at each run's checkpoint epoch) is chosen, although
    another has the better test numbers; choosing reads no test metric or prediction."""
    import results as compare
    for seed in (0, 1):
        # valid.csv: acc [50, 60] -> checkpoint epoch 1, balanced 59 (acc - 1); test balanced 90
        fake_run(tmp_path, "CCE", f"2026-01-01-00-00-0{seed}", [50, 60], metrics(90, 90), seed=seed, ccegamma=1.0)
        # checkpoint epoch 0 (acc 70), balanced 69; test balanced 80
        fake_run(tmp_path, "CCE", f"2026-01-01-00-01-0{seed}", [70, 65], metrics(80, 80), seed=seed, ccegamma=2.0)
    runs = compare.find_runs(tmp_path / "logs", dataset="tiny", model_index=41, datetime="all")
    groups = compare.group_runs(runs)
    opened = []
    monkeypatch.setattr(compare, "run_metrics", lambda *a, **k: opened.append(a))
    monkeypatch.setattr(compare, "load_predictions", lambda *a, **k: opened.append(a))
    assert compare.select_on_valid(groups) == {"CCE ccegamma=2": 69.0, "CCE ccegamma=1": 59.0}
    assert opened == []
    monkeypatch.undo()
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", "--select_on=valid",
                  "--markdown=t.md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid/ (mean over seeds of the balanced accuracy of each run's checkpoint epoch in valid.csv): CCE ccegamma=2" in result.stdout
    assert "ranking: CCE ccegamma=2 69.00, CCE ccegamma=1 59.00" in result.stdout
    assert "its test numbers: balanced acc 80.00 ± 0.00 over 2 run(s)" in result.stdout
    assert "| valid bal. acc |" in (tmp_path / "t.md").read_text()


def test_last_checkpoint_results_are_read_with_checkpoint_last(tmp_path):
    run_dir = fake_run(tmp_path, "ERM", "2026-01-01-00-00-00", [50, 40], metrics(80, 70))
    (run_dir / "test_last_metrics.json").write_text(json.dumps(metrics(75, 65)))
    best = call("compare.py", "--runs", run_dir, cwd=tmp_path)
    last = call("compare.py", "--runs", run_dir, "--checkpoint=last", cwd=tmp_path)
    assert best.stdout.splitlines()[1].split()[3:5] == ["80.00", "70.00"]
    assert last.stdout.splitlines()[1].split()[3:5] == ["75.00", "65.00"]


def test_where_keeps_the_runs_with_a_setting(tmp_path):
    fake_run(tmp_path, "ERM", "2026-01-01-00-00-00", [50], metrics(80, 70), mix="cutmix")
    fake_run(tmp_path, "ERM", "2026-01-01-00-00-01", [50], metrics(80, 60), weight_decay=0.005)
    fake_run(tmp_path, "ERM", "2026-01-01-00-00-02", [50], metrics(80, 50))  # predates --mix: counts as null
    base = ["compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all"]
    cutmix = call(*base, "--where", "mix=cutmix", cwd=tmp_path)
    assert cutmix.returncode == 0 and cutmix.stdout.count("\n") == 3 and cutmix.stdout.count("00-00-00") == 1
    plain = call(*base, "--where", "mix=null", "--where", "weight_decay=0.0005", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout.count("\n") == 3 and plain.stdout.count("00-00-02") == 1
    seeded = call(*base, "--seeds", "0", "--where", "mix=cutmix", cwd=tmp_path)
    assert seeded.returncode == 0 and "00-00-00" in seeded.stdout
    assert call(*base, "--seeds", "7", cwd=tmp_path).returncode == 2
    none = call(*base, "--where", "mix=mixup", cwd=tmp_path)
    assert none.returncode == 2 and "no run has mix=mixup" in none.stderr
    bad = call(*base, "--where", "mix", cwd=tmp_path)
    assert bad.returncode == 2 and "--where takes [OBJECTIVE:]KEY=VALUE" in bad.stderr
    fake_run(tmp_path, "CCE", "2026-01-01-00-00-03", [50], metrics(80, 40), ccegamma=1.0)
    fake_run(tmp_path, "CCE", "2026-01-01-00-00-04", [50], metrics(80, 30), ccegamma=2.0)
    scoped = call(*base, "--where", "CCE:ccegamma=2.0", cwd=tmp_path)  # ERM runs stay, one CCE run
    assert scoped.returncode == 0 and "00-00-04" in scoped.stdout and "00-00-03" not in scoped.stdout
    assert sum(line.startswith("ERM") for line in scoped.stdout.splitlines()) == 3
    either = call(*base, "--objectives=ERM", "--where", "mix=null", "--where", "mix=cutmix", "--where",
                  "weight_decay=0.0005", cwd=tmp_path)  # the plain run and the cutmix run, not the decayed one
    assert either.returncode == 0 and "00-00-00" in either.stdout and "00-00-02" in either.stdout
    assert "00-00-01" not in either.stdout


def test_split_valid_reads_the_valid_results_for_means_and_intervals(tmp_path):
    run_dir = fake_run(tmp_path, "ERM", "2026-01-01-00-00-00", [50], metrics(80, 70))
    (run_dir / "valid_metrics.json").write_text(json.dumps(metrics(60, 55)))
    result = call("compare.py", "--runs", run_dir, "--split=valid", cwd=tmp_path)
    row = result.stdout.splitlines()[1].split()
    assert row[2:5] == ["valid", "60.00", "55.00"]


def test_second_stages_are_grouped_by_the_settings_of_their_first_stage(tmp_path):
    """Each seed's stage 2 starts from that seed's own run: the path must not split a group, and stage 2 from a
    first stage with another weight decay must not join it (weight balancing from ERM vs from ERM + weight decay)."""
    for seed in (0, 1):
        plain = fake_run(tmp_path, "ERM", f"2026-01-01-00-00-0{seed}", [50], metrics(80, 70), seed=seed)
        decayed = fake_run(tmp_path, "ERM", f"2026-01-01-00-01-0{seed}", [50], metrics(80, 71), seed=seed,
                           weight_decay=0.005)
        for minute, start, balanced in ((2, plain, 60 + seed), (3, decayed, 50 + seed)):
            fake_run(tmp_path, "CB", f"2026-01-01-00-0{minute}-0{seed}", [50], metrics(80, balanced), seed=seed,
                     init_from=str(start / "50.00.pth"), maxnorm=1.0)
    result = call("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", "--objectives=CB",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()[1:3]}
    plain, decayed = (f"CB weight balancing stage 2 init_from=a ERM run (weight_decay={wd})" for wd in ("0.0005", "0.005"))
    assert set(rows) == {plain, decayed}
    assert " 2 " in rows[plain] and "60.50" in rows[plain]
    assert "50.50" in rows[decayed]


def test_test_priors_in_compare_from_the_saved_predictions(trained):
    """--test_prior P: the table's top-1 under P and the pairs under P; --test_prior all: the eleven priors and the
    figure; all from the predictions 2_test.py saved (no re-evaluation)."""
    import numpy as np

    import stats
    from runs import best_checkpoint_path, load_predictions
    for objective in ("ERM", "LA"):
        assert call("2_test.py", "--model_index=41", "--dataset=tiny", f"--objective={objective}", "--datetime=latest",
                    cwd=trained).returncode == 0
    one = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "LA",
               "--test_prior=forward-10", "--markdown=t.md", cwd=trained)
    assert one.returncode == 0, one.stderr
    erm = next((trained / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir())
    counts = torch_load(best_checkpoint_path(erm))["class_counts"]
    _, _, targets, predicted = load_predictions(erm)
    prior = stats.test_prior("forward-10", counts)
    expected = stats.weighted_accuracy(targets, targets == predicted, prior[np.unique(targets)])[0]
    row = [line for line in (trained / "t.md").read_text().splitlines() if line.startswith("| ERM ")][0]
    assert "| top-1 under forward-10 |" in (trained / "t.md").read_text() and f"| {expected:.2f} |" in row
    every = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "LA", "--test_prior=all",
                 "--prior_plot=shift.svg", cwd=trained)
    assert every.returncode == 0, every.stderr
    assert "top-1 (%) under each test class prior" in every.stdout and "for.50" in every.stdout
    assert (trained / "shift.svg").is_file()
    for path in (trained / "logs" / "SimpleCNN" / "tiny" / "CCE").glob("*/test_*"):
        path.unlink()  # a group not evaluated yet: its row says so instead of printing nan
    unevaluated = call("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
                       "--test_prior=all", cwd=trained)
    assert unevaluated.returncode == 0, unevaluated.stderr
    row = next(line for line in unevaluated.stdout.split("test class prior")[1].splitlines() if line.startswith("CCE"))
    assert row.split()[-11:] == ["-"] * 11 and "nan" not in unevaluated.stdout
    bad = call("compare.py", "--dataset=tiny", "--model_index=41", "--prior_plot=x.svg", cwd=trained)
    assert bad.returncode == 2 and "give --test_prior all" in bad.stderr


def torch_load(path):
    import torch
    return torch.load(path, weights_only=True)


def test_labels_name_the_methods_a_groups_settings_make():
    """A second stage is labelled by the method its flags make (cRT, LWS, weight balancing), mixing, policies, SAM
    and two-view methods by name; settings are listed only where groups of the same objective and methods differ."""
    import json as _json

    import results

    def key(objective, **settings):
        return ("logs/SimpleCNN/x", objective, tuple(sorted((k, _json.dumps(v)) for k, v in settings.items())))

    plain = dict(init_from=None, reinit_head=False, freeze_backbone=False, lws=False, maxnorm=0, mix=None,
                 augment="crop", sam_rho=0.0, method=None, epochs=15, sampler="random")
    crt = {**plain, "init_from": {"objective": "ERM"}, "reinit_head": True, "freeze_backbone": True, "epochs": 10,
           "sampler": "class_aware"}
    keys = [key("ERM", **plain), key("ERM", **crt), key("ERM", **{**crt, "reinit_head": False, "lws": True}),
            key("CB", **{**crt, "reinit_head": False, "maxnorm": 0.1}), key("ERM", **{**plain, "mix": "cmo"}),
            key("ERM", **{**plain, "augment": "randaugment"}), key("LA", **{**plain, "method": "bcl"}),
            key("LDAM", **{**plain, "sam_rho": 0.05}), key("LDAM", **{**plain, "sam_rho": 0.8})]
    assert results._labels(keys) == ["ERM", "ERM cRT", "ERM LWS", "CB weight balancing stage 2", "ERM CMO",
                                     "ERM RandAugment", "LA BCL", "LDAM SAM sam_rho=0.05", "LDAM SAM sam_rho=0.8"]
