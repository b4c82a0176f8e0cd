"""compare.py: runs grouped over seeds, mean +- std, the markdown table and the validation-curve figure."""
import json
import math
import statistics

import pytest

from conftest import run

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
    result = run("compare.py", "--dataset=tiny", "--model_index=41", "--datetime=all", "--markdown=out/table.md",
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
    result = run("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "CCE",
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
    result = run("compare.py", "--runs", str(tmp_path / "nothing"), cwd=tmp_path)
    assert result.returncode == 2 and "not a training run folder" in result.stderr
