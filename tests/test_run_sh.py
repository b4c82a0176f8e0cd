"""3_run.sh: the batch-experiment script, its plans and seeds."""
import json
import os
import subprocess
import sys

from conftest import ROOT, make_dataset


def run_sh(tmp_path, **variables):
    env = {**os.environ, "PYTHON": sys.executable, **variables}  # the interpreter running the tests
    return subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)


def test_syntax():
    subprocess.run(["bash", "-n", str(ROOT / "3_run.sh")], check=True)


def test_plan_end_to_end_with_seeds_and_per_objective_flags(tmp_path):
    """The demo plan on tiny images (put where the plan looks for digits-lt, so it is not rebuilt): every seed and
    objective trained as real processes, each evaluated, one table, the figure, the markdown file."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    result = run_sh(tmp_path, EPOCHS="1", SEEDS="3 4", OBJECTIVES="ERM CCE:--ccegamma=0.5,--label_smoothing=0.1",
                    MARKDOWN="table.md")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "logs" / "SimpleCNN" / "digits-lt"
    runs = sorted(folder.glob("*/*/config.json"))
    assert len(runs) == 4
    settings = [json.loads(path.read_text())["args"] for path in runs]
    assert sorted((s["objective"], s["seed"]) for s in settings) == [("CCE", 3), ("CCE", 4), ("ERM", 3), ("ERM", 4)]
    assert all(s["ccegamma"] == 0.5 and s["label_smoothing"] == 0.1 for s in settings if s["objective"] == "CCE")
    assert all(s["label_smoothing"] == 0.0 and s["height"] == 16 for s in settings if s["objective"] == "ERM")
    for path in runs:
        assert (path.parent / "confusion_matrix.svg").is_file() and (path.parent / "test_metrics.json").is_file()
    table = result.stdout[result.stdout.index("objective "):].splitlines()
    assert [line.split()[:3] for line in table[1:3]] == [["ERM", "2", "test"], ["CCE", "ccegamma=0.5", "2"]]
    markdown = (tmp_path / "table.md").read_text().splitlines()
    assert markdown[2].startswith("| ERM | 2 | test |") and markdown[3].startswith("| CCE ccegamma=0.5 | 2 | test |")
    curves = (folder / "valid_acc.svg").read_text()
    assert "ERM (mean of 2)" in curves and "CCE ccegamma=0.5 (mean of 2)" in curves


def test_unknown_plan(tmp_path):
    result = run_sh(tmp_path, PLAN="coco-lt")
    assert result.returncode == 2 and result.stderr.strip() == ("error: unknown PLAN 'coco-lt'; choose demo, fmnist-lt, "
                                                                "cifar10-lt, cifar100-lt, imagenet-lt, places-lt or inat2018")


def test_large_plans_build_from_lists_and_train_through_torchrun(tmp_path):
    result = run_sh(tmp_path, PYTHON="echo", LAUNCH="echo torchrun --nproc_per_node=8", PROCESSES="8",
                    PLAN="imagenet-lt", LISTS="/lists", IMAGES="/data/imagenet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("data_split.py --from_list --train_list /lists/ImageNet_LT_train.txt --valid_list "
                             "/lists/ImageNet_LT_val.txt --test_list /lists/ImageNet_LT_test.txt --images "
                             "/data/imagenet --out_name imagenet-lt")
    training = [line for line in lines if "1_train.py" in line]
    assert len(training) == 4 and all(line.startswith("torchrun --nproc_per_node=8 ") for line in training)
    assert all("--model_index=14" in line and "--epochs=90" in line and "--lr=0.2 --schedule=cosine" in line and
               "--batchsize=64" in line and "--augment=rrc_flip" in line for line in training)  # 512 over 8 processes
    inat = run_sh(tmp_path, PYTHON="echo", PLAN="inat2018", LISTS="/lists", IMAGES="/data/inat", MODEL="11")
    assert "--test_list /lists/iNaturalist18_val.txt --valid_per_class 2" in inat.stdout
    assert "--weight_decay=1e-4" in inat.stdout and "--model_index=11" in inat.stdout
    places = run_sh(tmp_path, PYTHON="echo", PLAN="places-lt", LISTS="/lists", IMAGES="/data/places")
    assert "--model_index=13" in places.stdout and "--pretrained --lr=0.01" in places.stdout


def test_cifar_plans_follow_cao_et_al(tmp_path):
    """A dry run (PYTHON=echo prints each command): the data and training commands of the GPU plans."""
    result = run_sh(tmp_path, PYTHON="echo", PLAN="cifar100-lt", SEEDS="0 1", OBJECTIVES="ERM LDAM:--drw")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("data_split.py --from_torchvision CIFAR100 --root data --imbalance_ratio 100 "
                             "--valid_source test --out_name cifar100-lt")
    training = [line for line in lines if "1_train.py" in line]
    assert len(training) == 4
    assert all("--dataset=cifar100-lt --model_index=43" in line and "--epochs=200" in line and
               "--lr=0.1 --lrstep 160 20 20 --lrdecay=0.01 --warmup --batchsize=128 --weight_decay=2e-4" in line and
               "--augment=crop_flip" in line for line in training)
    assert "--objective=LDAM" in training[1] and training[1].endswith(" --drw") and "--drw" not in training[0]
    assert "--seed=0" in training[0] and "--seed=1" in training[3]


def test_cifar_plans_run_cao_et_al_s_baselines(tmp_path):
    """Focal loss with gamma 1 and class-balanced re-weighting reduced by the weighted mean, as in Cao et al.'s
    table; the CPU plan keeps focal gamma 2 and Cui's plain mean."""
    result = run_sh(tmp_path, PYTHON="echo", PLAN="cifar10-lt")
    training = {line.split("--objective=")[1].split()[0]: line for line in result.stdout.splitlines()
                if "1_train.py" in line}
    assert list(training) == ["ERM", "CCE", "COT", "FL", "CB", "LDAM", "BS", "LA"]
    assert training["FL"].endswith(" --focal_gamma=1") and training["CB"].endswith(" --cb_reduction=weighted")
    assert training["LDAM"].endswith(" --drw")
    fmnist = run_sh(tmp_path, PYTHON="echo", PLAN="fmnist-lt")
    assert "--focal_gamma" not in fmnist.stdout and "--cb_reduction" not in fmnist.stdout


def test_baselines_run_second_stages_after_their_first(tmp_path):
    result = run_sh(tmp_path, PYTHON="echo", PLAN="fmnist-lt", OBJECTIVES="baselines")
    assert result.returncode == 0, result.stderr
    rows = [line.split("--augment=crop", 1)[1].strip() for line in result.stdout.splitlines() if "1_train.py" in line]
    objectives = [line.split("--objective=")[1].split()[0] for line in result.stdout.splitlines() if "1_train.py" in line]
    assert rows[0] == "" and objectives[0] == "ERM"  # the first stage
    assert rows[1].startswith("--init_from=latest --freeze_backbone --reinit_head --sampler=class_balanced --epochs=5")
    assert rows[2].startswith("--init_from=latest --lws")
    # weight balancing: stage 1 is the first ERM row (its weight decay chosen on valid/), stage 2 CB from it
    assert objectives[3] == "CB" and "--init_from=latest:ERM" in rows[3] and "--weight_decay=5e-3" in rows[3]
    assert "--weight_decay=5e-3" not in rows[:3] and "--sampler" not in rows[3]
    assert "--maxnorm=1.0" in rows[3] and "--sam_rho=0.8" in rows[objectives.index("LDAM")]
    demo = run_sh(tmp_path, PYTHON="echo", OBJECTIVES="baselines")  # a plan without the choice: its own stage 1
    trained = [line for line in demo.stdout.splitlines() if "1_train.py" in line]
    assert "--objective=ERM" in trained[3] and trained[3].endswith("--weight_decay=5e-3")
    assert "--objective=CB" in trained[4]
    assert {"--mix=mixup", "--mix=cutmix", "--mix=remix", "--mix=cmo"} <= set(rows)
    assert ("LA", "--mix=cmo") in zip(objectives, rows) and ("LA", "--augment=randaugment") in zip(objectives, rows)
