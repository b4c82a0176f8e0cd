"""3_run.sh: the batch-experiment script, its plans and seeds."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, call, make_dataset, script


def run_sh(tmp_path, **variables):
    env = {**os.environ, "PYTHON": sys.executable, **variables}  # the interpreter running the tests
    return subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)


def test_syntax():
    subprocess.run(["bash", "-n", str(ROOT / "3_run.sh")], check=True)


def test_plan_end_to_end_with_seeds_and_per_objective_flags(tmp_path):
    """The demo plan on tiny images under a dataset name with a space (DATASET_NAME): every seed and objective
    trained as real processes, a second stage (CRT) from the first stage it finds (runs.py find answers in
    tab-separated fields, so the folder stays whole), each evaluated, one table, the figure, the markdown file."""
    make_dataset(tmp_path / "a_datasets", name="my data")
    result = run_sh(tmp_path, DATASET_NAME="my data", EPOCHS="1", SEEDS="3",
                    OBJECTIVES="ERM CCE:--ccegamma=0.5,--label_smoothing=0.1 CRT", MARKDOWN="table.md",
                    REPORT="")  # REPORT= writes none (the report's own tests: test_report.py, with several seeds a row)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "logs" / "SimpleCNN" / "my data"
    settings = {path.parent: json.loads(path.read_text())["args"] for path in sorted(folder.glob("*/*/config.json"))}
    assert sorted((s["objective"], s["seed"]) for s in settings.values()) == [("CCE", 3), ("ERM", 3), ("ERM", 3)]
    (cce,) = [run for run, s in settings.items() if s["objective"] == "CCE"]
    (erm,) = [run for run, s in settings.items() if s["objective"] == "ERM" and not s.get("init_from")]
    (crt,) = [run for run, s in settings.items() if s.get("init_from")]
    assert settings[cce]["ccegamma"] == 0.5 and settings[cce]["label_smoothing"] == 0.1
    assert all(settings[run]["label_smoothing"] == 0.0 and settings[run]["height"] == 16 for run in (erm, crt))
    assert Path(settings[crt]["init_from"]).parent == erm.resolve()  # the second stage found its own first stage
    assert settings[crt]["freeze_backbone"] and settings[crt]["reinit_head"]
    for run in settings:
        assert (run / "confusion_matrix.svg").is_file() and (run / "test_metrics.json").is_file()
    table = result.stdout[result.stdout.index("objective "):].splitlines()
    assert [line.split()[:3] for line in table[1:4]] == [["ERM", "1", "test"], ["CCE", "ccegamma=0.5", "1"],
                                                         ["ERM", "cRT", "1"]]
    markdown = (tmp_path / "table.md").read_text().splitlines()
    assert markdown[2].startswith("| ERM | 1 | test |") and markdown[3].startswith("| CCE ccegamma=0.5 | 1 | test |")
    assert markdown[4].startswith("| ERM cRT | 1 | test |")
    assert not (folder / "report.html").exists()  # REPORT= asked for none
    curves = (folder / "valid_acc.svg").read_text()
    for label, run in (("ERM", erm), ("CCE ccegamma=0.5", cce), ("ERM cRT", crt)):
        assert f"{label} ({run.name})" in curves  # one run: its name


def test_a_flag_the_plans_questions_cannot_carry_is_one_line_and_the_plan_leaves_no_process(tmp_path):
    """A plan asks its one runs.py serve a line a question, the arguments apart by \\x1f: a flag holding either is
    refused in one line before anything trains, and the plan's end (an error's too) waits for the server to go."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    result = run_sh(tmp_path, SEEDS="0", OBJECTIVES="ERM", EPOCHS="1", REPORT="", EXTRA="--label_smoothing=0.1\x1f")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines == ["error: row ERM (or EXTRA) holds a newline or an ASCII unit "
                                                "separator (\\x1f) in a flag"], result.stderr
    assert not (tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "ERM").exists()  # nothing trained
    left = []
    for process in Path("/proc").iterdir():
        try:
            if process.name.isdigit() and Path(os.readlink(process / "cwd")) == tmp_path:
                left.append((process / "cmdline").read_bytes())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    assert left == []


def test_unknown_plan(tmp_path):
    result = run_sh(tmp_path, PLAN="coco-lt")
    assert result.returncode == 2 and result.stderr.strip() == ("error: unknown PLAN 'coco-lt'; choose demo, study, "
                                                                "fmnist-lt, cifar10-lt, cifar100-lt, imagenet-lt, places-lt, inat2018, "
                                                                "transfer-source or transfer")


def test_a_plan_takes_a_backbone_by_name_and_the_transfer_plans_their_rows(tmp_path):
    """MODEL=clip:CONFIG (or timm:NAME) reaches every script as --model; the transfer plans train LIFT's rows from
    the source network's file."""
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="transfer")
    assert result.returncode == 0, result.stderr
    trains = [line for line in result.stdout.splitlines() if "1_train.py" in line]
    tests = [line for line in result.stdout.splitlines() if "2_test.py" in line]
    assert len(trains) == len(tests) == 6
    assert all("--dataset=fmnist-tail" in line and "--model=clip:" in line and "vit.json" in line
               and "--model_index" not in line for line in trains + tests)
    assert all("--pretrained=logs/transfer-source.pth" in line and "--method=lift --lift_init=class_mean" in line
               and "--lr=0.01 --weight_decay=5e-4 --schedule=cosine_each_epoch --batchsize=128" in line
               for line in trains)  # LIFT's recipe (docs/recipes.md)
    modules = [next((word for word in line.split() if word.startswith("--lift_module=")), "adaptformer")
               for line in trains]
    assert modules == ["--lift_module=none"] * 2 + ["--lift_module=full"] * 2 + ["adaptformer"] * 2
    assert [line.split("--objective=")[1].split()[0] for line in trains] == ["ERM", "LA"] * 3
    source = run_sh(tmp_path, DRY_RUN="1", PLAN="transfer-source")
    assert source.returncode == 0 and "--dataset=fmnist-head" in source.stdout and "--optimizer=adamw" in source.stdout
    bad = run_sh(tmp_path, DRY_RUN="1", PLAN="transfer", MODEL="clip:vit:odd")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: MODEL: "), bad.stderr


def test_a_study_of_a_clip_encoder_runs_lifts_rows_at_its_input_size(tmp_path):
    """PLAN=study with MODEL=clip:...: LIFT's recipe and rows (its module, the classifier alone, ERM), at the
    encoder's only input size, from its weights, whatever size the study would pick for the data."""
    make_dataset(tmp_path / "a_datasets", name="mine")
    (tmp_path / "tiny.json").write_text(json.dumps({"embed_dim": 16, "vision_cfg": {
        "image_size": 48, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16}}))
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="study", DATASET="mine", MODEL="clip:tiny.json")
    assert result.returncode == 0, result.stderr
    trains = [shlex.split(line) for line in result.stdout.splitlines() if "1_train.py" in line]
    assert [[a for a in argv if a.startswith(("--objective", "--method", "--lift_module"))] for argv in trains] == [
        ["--objective=LA", "--method=lift"], ["--objective=LA", "--method=lift", "--lift_module=none"],
        ["--objective=ERM", "--method=lift"]]
    for argv in trains:
        assert {"--epochs=10", "--lr=0.01", "--weight_decay=5e-4", "--schedule=cosine_each_epoch", "--height=48",
                "--width=48", "--augment=rrc_flip", "--pretrained", "--model=clip:tiny.json"} <= set(argv), argv
        assert not any(a.startswith("--lrstep") for a in argv)
    (tmp_path / "wide.json").write_text(json.dumps({"embed_dim": 16, "vision_cfg": {
        "image_size": [32, 48], "patch_size": 8, "width": 32, "layers": 2, "head_width": 16}}))
    wide = run_sh(tmp_path, DRY_RUN="1", PLAN="study", DATASET="mine", MODEL="clip:wide.json", OBJECTIVES="LA")
    assert wide.returncode == 0 and "--height=32 --width=48" in wide.stdout, wide.stderr
    (tmp_path / "bad.json").write_text("{}")
    bad = run_sh(tmp_path, DRY_RUN="1", PLAN="study", DATASET="mine", MODEL="clip:bad.json")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: MODEL: "), bad.stderr


def test_a_row_evaluated_under_the_test_priors_asks_for_them(tmp_path):
    """A SADE row (named here) is evaluated under --test_prior all, so the plan asks runs.py find for a run whose
    metrics hold the priors (an older evaluation without them is evaluated again), and so does a cluster plan's
    collecting job; other rows ask for nothing.  The scripts the plan starts are stand-ins that log their arguments,
    and so is the runs.py serve the plan asks (each question a line, its arguments apart by \\x1f; every answer:
    not found); the network's folder name still comes from Python."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    log = tmp_path / "calls.log"
    stand_in = tmp_path / "python"
    stand_in.write_text(f"""#!/bin/sh
case "$1 $2" in
    -c*) exec {shlex.quote(sys.executable)} "$@" ;;
    *runs.py\\ serve) while IFS= read -r line; do
            printf '%s\\n' "$line" | tr '\\037' ' ' >> {shlex.quote(str(log))}; printf '1\\037\\n'
        done ;;
    *) echo "$*" >> {shlex.quote(str(log))} ;;
esac
""")
    stand_in.chmod(0o755)
    rows = "ERM sade=ERM:--method=sade,--normed_head"
    result = run_sh(tmp_path, PYTHON=str(stand_in), SEEDS="0", OBJECTIVES=rows, REPORT="")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    finds = [line for line in calls if line.split()[0] == "find"]
    assert ["--evaluated_with=test_priors" in line for line in finds] == [False, False, True, True]  # before, after
    tests = [line for line in calls if line.split()[0].endswith("2_test.py")]
    assert ["--test_prior=all" in line for line in tests] == [False, True]
    log.unlink()
    collected = run_sh(tmp_path, PYTHON=str(stand_in), SEEDS="0", OBJECTIVES=rows, REPORT="", COLLECT="1")
    assert collected.returncode == 2 and "no evaluated run of this plan" in collected.stderr
    assert ["--evaluated_with=test_priors" in line for line in log.read_text().splitlines()] == [False, True]


def test_large_plans_build_from_lists_and_train_through_torchrun(tmp_path):
    result = run_sh(tmp_path, DRY_RUN="1", LAUNCH="torchrun --nproc_per_node=8", PROCESSES="8",
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
    inat = run_sh(tmp_path, DRY_RUN="1", PLAN="inat2018", LISTS="/lists", IMAGES="/data/inat", MODEL="11")
    assert "--test_list /lists/iNaturalist18_val.txt --valid_per_class 2" in inat.stdout
    assert "--weight_decay=1e-4" in inat.stdout and "--model_index=11" in inat.stdout
    places = run_sh(tmp_path, DRY_RUN="1", PLAN="places-lt", LISTS="/lists", IMAGES="/data/places")
    assert "--model_index=13" in places.stdout and "--pretrained --lr=0.01" in places.stdout


def test_cifar_plans_follow_cao_et_al(tmp_path):
    """A dry run (DRY_RUN=1 prints each command): the data and training commands of the GPU plans."""
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="cifar100-lt", SEEDS="0 1", OBJECTIVES="ERM LDAM:--drw")
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
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="cifar10-lt")
    training = {line.split("--objective=")[1].split()[0]: line for line in result.stdout.splitlines()
                if "1_train.py" in line}
    assert list(training) == ["ERM", "CCE", "COT", "FL", "CB", "LDAM", "BS", "LA"]
    assert training["FL"].endswith(" --focal_gamma=1") and training["CB"].endswith(" --cb_reduction=weighted")
    assert training["LDAM"].endswith(" --drw")
    fmnist = run_sh(tmp_path, DRY_RUN="1", PLAN="fmnist-lt")
    assert "--focal_gamma" not in fmnist.stdout and "--cb_reduction" not in fmnist.stdout


def _training_lines(output):
    return [line for line in output.splitlines() if "1_train.py" in line]


def test_baselines_run_second_stages_after_their_first_by_tag_and_seed(tmp_path):
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="fmnist-lt", OBJECTIVES="baselines", SEEDS="0 1")
    assert result.returncode == 0, result.stderr
    lines = _training_lines(result.stdout)
    rows = [line.split("--augment=crop", 1)[1].strip() for line in lines]
    objectives = [line.split("--objective=")[1].split()[0] for line in lines]
    tags = [line.split("--tag=")[1].split()[0] for line in lines]
    per_seed = len(lines) // 2
    assert tags[:per_seed] == tags[per_seed:]  # a row's tag does not depend on the seed
    assert len(set(tags[:per_seed])) == per_seed  # each row its own
    assert rows[0] == "" and objectives[0] == "ERM"  # the first stage
    first = f"--init_from=tag:{tags[0]}"
    assert rows[1].startswith(f"{first} --freeze_backbone --reinit_head --sampler=class_aware --schedule=cosine_epoch")
    assert rows[2].startswith(f"{first} --lws --sampler=class_aware")
    assert rows[1].endswith("--epochs=10") and rows[2].endswith("--epochs=5")
    # weight balancing: stage 1 is the first ERM row (its weight decay chosen on valid/), stage 2 CB from it
    assert objectives[3] == "CB" and first in rows[3] and "--weight_decay=0.1" in rows[3] and "--maxnorm=0.1" in rows[3]
    assert "--cb_loss=softmax_bce" in rows[3] and "--sampler" not in rows[3] and "--batchsize=64" in rows[3]
    assert "--sam_rho=0.05" in rows[objectives.index("LDAM")]  # chosen on valid/ for this plan (0.8 for CIFAR)
    assert all(f"--seed={0 if i < per_seed else 1}" in line for i, line in enumerate(lines))
    demo = run_sh(tmp_path, DRY_RUN="1", OBJECTIVES="baselines")  # a plan without the choice: its own stage 1
    trained = _training_lines(demo.stdout)
    assert "--objective=ERM" in trained[3] and trained[3].endswith("--weight_decay=5e-3")  # row wb1
    stage_one = trained[3].split("--tag=")[1].split()[0]
    assert "--objective=CB" in trained[4] and f"--init_from=tag:{stage_one}" in trained[4]
    mixes = {row.split()[0] for row in rows if row.startswith("--mix=")}
    assert mixes == {"--mix=mixup", "--mix=cutmix", "--mix=remix", "--mix=cmo"}
    assert ("LA", "--mix=cmo") in zip(objectives, [row.split()[0] if row else "" for row in rows])


def test_a_named_row_and_an_unknown_reference(tmp_path):
    result = run_sh(tmp_path, DRY_RUN="1", PLAN="fmnist-lt",
                    OBJECTIVES="start=ERM:--weight_decay=1e-3 CB:--init_from=row:start,--freeze_backbone")
    lines = _training_lines(result.stdout)
    assert result.returncode == 0 and "--weight_decay=1e-3" in lines[0]
    assert f"--init_from=tag:{lines[0].split('--tag=')[1].split()[0]}" in lines[1]
    missing = run_sh(tmp_path, DRY_RUN="1", PLAN="fmnist-lt", OBJECTIVES="CB:--init_from=row:nowhere")
    assert missing.returncode == 2 and "refers to row:nowhere, which is not a row of this plan" in missing.stderr


def test_a_complete_run_is_skipped_and_a_stopped_one_resumed(tmp_path, monkeypatch, capsys):
    """The plan on tiny images: a run of the row's tag and seed that stopped part-way (Ctrl-C in its second epoch) is
    resumed, not started again; the second time everything is found complete and evaluated, so nothing trains.  A
    run whose settings the row no longer has is stale (``runs.py find``: the plan trains it again)."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    planned = run_sh(tmp_path, DRY_RUN="1", EPOCHS="2", SEEDS="0", OBJECTIVES="ERM")
    (command,) = _training_lines(planned.stdout)
    argv = shlex.split(command)[2:]
    train = script("1_train")
    original, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    assert call("1_train.py", *argv, cwd=tmp_path).returncode == 130
    resumed = run_sh(tmp_path, EPOCHS="2", SEEDS="0", OBJECTIVES="ERM", REPORT="")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming SimpleCNN on digits-lt" in resumed.stdout and "epoch 2/2" in resumed.stdout
    (run,) = (tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "ERM").iterdir()
    assert (run / "test_metrics.json").is_file()
    again = run_sh(tmp_path, EPOCHS="2", SEEDS="0", OBJECTIVES="ERM", REPORT="")
    assert again.returncode == 0 and f"done already: {Path('logs') / 'SimpleCNN' / 'digits-lt' / 'ERM' / run.name}" \
        in again.stdout
    assert "training SimpleCNN" not in again.stdout and "resuming" not in again.stdout
    assert len(list(run.parent.iterdir())) == 1

    import runs
    tag = next(a for a in argv if a.startswith("--tag=")).removeprefix("--tag=")
    find = runs.find_parser().parse_args(["find", "--model_index=41", "--dataset=digits-lt", f"--tag={tag}",
                                          "--seed=0", f"--logs_dir={tmp_path / 'logs'}"])
    capsys.readouterr()
    assert runs.find_main(find, argv) == 0 and capsys.readouterr().out == f"evaluated\t{run}\n"
    priors = runs.find_parser().parse_args([*(f"--{key}={getattr(find, key)}" for key in
                                              ("model_index", "dataset", "tag", "seed", "logs_dir")),
                                            "find", "--evaluated_with=test_priors"])
    assert runs.find_main(priors, argv) == 0 and capsys.readouterr().out == f"complete\t{run}\n"  # not under them
    assert call("2_test.py", "--model_index=41", "--dataset=digits-lt", "--objective=ERM", f"--datetime={run.name}",
                "--test_prior=all", cwd=tmp_path).returncode == 0
    assert runs.find_main(priors, argv) == 0 and capsys.readouterr().out == f"evaluated\t{run}\n"
    config = json.loads((run / "config.json").read_text())
    config["args"]["lr"] *= 2  # trained otherwise than the row trains now
    (run / "config.json").write_text(json.dumps(config))
    assert runs.find_main(find, argv) == 0 and capsys.readouterr().out == f"stale\t{run}\tlr\n"


def test_a_run_stopped_in_its_first_epoch_is_trained_anew_once_by_two_plans_at_once(tmp_path, monkeypatch):
    """A run killed before its first epoch ended has nothing to resume: the plan starts the row again.  Two plans
    with that row and seed, started together: one trains it while the other waits for its lock, then finds it done;
    the record is written once (RECORDS)."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    planned = run_sh(tmp_path, DRY_RUN="1", EPOCHS="1", SEEDS="0", OBJECTIVES="ERM")
    (command,) = _training_lines(planned.stdout)
    train = script("1_train")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    assert call("1_train.py", *shlex.split(command)[2:], cwd=tmp_path).returncode == 130
    env = {**os.environ, "PYTHON": sys.executable, "EPOCHS": "1", "SEEDS": "0", "OBJECTIVES": "ERM", "REPORT": "",
           "RECORDS": "results"}
    plans = [subprocess.Popen(["bash", str(ROOT / "3_run.sh")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [plan.communicate(timeout=600) for plan in plans]
    assert [plan.returncode for plan in plans] == [0, 0], [err[-1000:] for _, err in outputs]
    assert sum("training SimpleCNN" in out for out, _ in outputs) == 1
    assert sum("done already" in out for out, _ in outputs) == 1 and not any("resuming" in out for out, _ in outputs)
    stopped, trained = sorted((tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "ERM").iterdir())
    assert (trained / "test_metrics.json").is_file() and not (stopped / "last.pth").exists()
    record = tmp_path / "results" / "SimpleCNN" / "digits-lt" / "ERM" / trained.name
    assert (record / "record.json").is_file() and not list(record.glob("*.pth"))
    assert not (tmp_path / "results" / "SimpleCNN" / "digits-lt" / "ERM" / stopped.name).exists()


def test_a_plan_goes_on_from_the_committed_records_on_a_machine_without_its_runs(tmp_path, capsys, monkeypatch):
    """RECORDS: where logs/ has no run of a row and seed (a fresh clone, a lost machine), its current record is the
    row's run: nothing trains, and the table reads records only (a row's kept and new seeds are one row).  A second
    stage that must train needs its first stage's checkpoint, which a record does not keep: the plan trains that
    first stage again, and the table shows the run trained again.  A record trained otherwise, or on other images,
    is stale; an edited one is not kept; a refused question stops the plan before anything trains."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    plan = {"EPOCHS": "1", "SEEDS": "0", "REPORT": "", "RECORDS": "my results"}  # (a root with a space)
    first = run_sh(tmp_path, **plan, OBJECTIVES="ERM CCE")
    assert first.returncode == 0, first.stderr[-2000:]
    records = Path("my results") / "SimpleCNN" / "digits-lt"
    (erm_record,), (cce_record,) = (list((tmp_path / records / objective).iterdir()) for objective in ("ERM", "CCE"))
    import shutil
    shutil.rmtree(tmp_path / "logs")  # the machine that trained them is gone; the records are committed

    again = run_sh(tmp_path, **{**plan, "SEEDS": "0 1"}, OBJECTIVES="ERM")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"done already: {records / 'ERM' / erm_record.name} (its record" in again.stdout
    assert again.stdout.count("training SimpleCNN") == 1 and "--seed=1" not in again.stdout  # seed 1 only
    (seed_one,) = [run for run in (tmp_path / records / "ERM").iterdir() if run != erm_record]
    table = again.stdout[again.stdout.index("objective "):].splitlines()
    assert table[1].split()[:2] == ["ERM", "2"] and table[2].startswith("mean ±")  # one row, both seeds
    assert table[1].endswith(f"{records / 'ERM' / erm_record.name} (+1)")  # the kept record, and seed 1's

    pending = run_sh(tmp_path, **{**plan, "SEEDS": "0 1 2"}, OBJECTIVES="ERM CCE", PENDING="1")
    assert pending.returncode == 0, pending.stderr[-2000:]  # what is left: ERM seed 2, CCE seeds 1 and 2
    assert pending.stdout.splitlines() == ["1\tCCE\tnone", "2\tERM\tnone", "2\tCCE\tnone"]

    refused = run_sh(tmp_path, **plan, OBJECTIVES="ERM ERM:--init_from=row:ERM,--label_smoothing=0.1\x1f")
    assert refused.returncode == 2 and "training SimpleCNN" not in refused.stdout
    assert refused.stderr.strip().splitlines() == [
        "error: row ERM:--init_from=row:ERM,--label_smoothing=0.1\x1f (or EXTRA) holds a newline or an ASCII unit "
        "separator (\\x1f) in a flag"]

    staged = run_sh(tmp_path, **plan, OBJECTIVES="ERM CCE CRT")
    assert staged.returncode == 0, staged.stderr[-2000:]
    assert "starts from row ERM, whose run is not under logs/ (found: none; a record keeps no checkpoint)" \
        in staged.stdout
    assert staged.stdout.count("training SimpleCNN") == 2  # ERM again (for its checkpoint), then cRT
    logs = tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "ERM"
    retrained, crt = sorted(run for run in logs.iterdir() if json.loads((run / "config.json").read_text())
                            ["args"]["seed"] == 0)
    assert Path(json.loads((crt / "config.json").read_text())["args"]["init_from"]).parent == retrained.resolve()
    table = staged.stdout[staged.stdout.index("objective "):].splitlines()
    for line, run in zip(table[1:4], (records / "ERM" / retrained.name, records / "CCE" / cce_record.name,
                                      records / "ERM" / crt.name)):  # the ERM the cRT started from; the records
        assert line.endswith(f"  {run}")

    import runs  # the plan's question for the CCE row, as runs.py serve answers it
    (line,) = [line for line in run_sh(tmp_path, **plan, OBJECTIVES="CCE", TAGS="1").stdout.splitlines()]
    argv = line.split("\t")[4].split("\x1f")
    question = runs.find_parser().parse_args([
        "find", "--model_index=41", "--dataset=digits-lt", f"--tag={line.split()[0]}", "--seed=0",
        f"--logs_dir={tmp_path / 'logs'}", f"--records={tmp_path / 'my results'}"])
    cce_record = tmp_path / records / "CCE" / cce_record.name
    capsys.readouterr()
    assert runs.find_main(question, argv) == 0 and capsys.readouterr().out == f"recorded\t{cce_record}\n"
    assert runs.find_main(question, [*argv, "--lr=0.5"]) == 0
    assert capsys.readouterr().out == f"stale\t{cce_record}\tlr\n"  # trained otherwise: the plan says so, trains
    monkeypatch.chdir(tmp_path)  # where the plan runs: its dataset in a_datasets/, which the record must match
    dataset = Path("a_datasets") / "digits-lt"
    extra = next((dataset / "train").glob("*/*.png"))
    shutil.copy(extra, extra.with_name("another.png"))  # not the images the record's run trained on
    assert runs.find_main(question, argv) == 0
    assert capsys.readouterr().out == \
        f"stale\t{cce_record}\tdata (the classes or images per class of {dataset / 'train'})\n"
    extra.with_name("another.png").unlink()
    tested = next((dataset / "test").glob("*/*.png"))
    tested.rename(tested.with_name("renamed.png"))  # nor the images it was tested on
    assert runs.find_main(question, argv) == 0
    assert capsys.readouterr().out == f"stale\t{cce_record}\tdata (the images or labels of {dataset / 'test'})\n"
    tested.with_name("renamed.png").rename(tested)
    config = json.loads((cce_record / "config.json").read_text())
    config["args"]["ccegamma"] = 2.0  # edited: its SHA-256 no longer matches record.json
    (cce_record / "config.json").write_text(json.dumps(config))
    assert runs.find_main(question, argv) == 1
    assert "note: not kept, so the row trains again" in capsys.readouterr().err
