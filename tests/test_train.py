"""1_train.py end to end on a tiny generated dataset."""
import json
import re

import pytest
import torch

import criterion
import runs
from optimisation import lr_factor
from runtime import Runtime
from conftest import FAST, TRAINED_FLAGS, TRAINED_OBJECTIVES, call, checkpoint_accuracy, files_under, run_dir_of, script


def train_run(workdir, *extra, epochs=2):
    result = call("1_train.py", *FAST, f"--epochs={epochs}", *extra, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return result


only_run_dir = run_dir_of


@pytest.mark.parametrize("objective", ["ERM", "CCE", "COT", "FL"])
def test_training_writes_the_documented_files(trained_once, objective):
    workdir, printed = trained_once  # 2 epochs of TRAINED_FLAGS: --warmup --ccegamma=1
    run_dir = only_run_dir(workdir, objective)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}", run_dir.name)
    names = sorted(p.name for p in run_dir.iterdir())
    best = [n for n in names if re.fullmatch(r"\d+\.\d\d\.pth", n)]
    assert len(best) == 1 and "last.pth" in names and "train.csv" in names and "valid.csv" in names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert not [n for n in names if n.endswith(".tmp")]

    train_rows, valid_rows = runs.read_csv(run_dir / "train.csv"), runs.read_csv(run_dir / "valid.csv")
    assert list(valid_rows[0])[:5] == ["epoch", "loss", "acc", "top5acc", "lr"]
    assert list(train_rows[0])[:5] == ["epoch", "loss", "acc", "top5acc", "lr"]
    assert {"balanced_acc", "macro_f1", "many_acc", "medium_acc", "few_acc"} <= set(valid_rows[0])
    assert [int(r["epoch"]) for r in valid_rows] == [0, 1] and len(train_rows) == 2
    best_acc = max(float(r["acc"]) for r in valid_rows)
    assert best[0] == f"{best_acc:.2f}.pth"

    iters = 3  # 24 training images, batch 8
    for row in train_rows:
        epoch = int(row["epoch"])
        expected = 0.05 * lr_factor(epoch * iters + iters - 1, iters, [1, 1], 0.2, warmup_epochs=5)
        assert float(row["lr"]) == pytest.approx(expected, rel=1e-6)
        assert float(valid_rows[epoch]["lr"]) == pytest.approx(expected, rel=1e-6)
    assert f"best valid acc {best_acc:.2f}" in printed[objective]
    assert str(run_dir.relative_to(workdir)) in printed[objective]


def test_checkpoint_reproduces_logged_accuracy(trained):
    workdir = trained
    run_dir = only_run_dir(workdir, "CCE")
    state = torch.load(runs.best_checkpoint_path(run_dir), weights_only=True)
    assert {"model", "epoch", "acc", "top5acc", "loss", "classes", "image_size", "mean", "std", "model_index",
            "objective", "args"} <= set(state)
    assert state["classes"] == ["cat", "dog", "fox"] and state["image_size"] == [16, 16]
    assert state["model_index"] == 41 and state["objective"] == "CCE" and state["args"]["seed"] == 0
    assert not any(key.startswith("module.") for key in state["model"])
    acc = checkpoint_accuracy(workdir, state)
    assert acc == pytest.approx(state["acc"], abs=1e-3)
    row = runs.read_csv(run_dir / "valid.csv")[state["epoch"]]
    assert float(row["acc"]) == pytest.approx(acc, abs=1e-3)


def test_tensorboard_scalars(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(only_run_dir(trained, "ERM")))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for split in ("train", "valid"):
        assert {f"{split}/loss", f"{split}/acc", f"{split}/top5acc"} <= tags
    assert "train/lr" in tags and "valid/lr" not in tags  # the learning rate is the training's
    assert {"valid/balanced_acc", "valid/macro_f1", "valid_class_acc/cat", "valid_class_acc/fox"} <= tags
    assert [event.step for event in events.Scalars("valid/acc")] == [0, 1]


def test_same_seed_same_valid_csv(trained):
    first = only_run_dir(trained, "ERM")
    first_csv = (first / "valid.csv").read_text()
    first.rename(trained / "first")
    assert call("1_train.py", *TRAINED_FLAGS, cwd=trained).returncode == 0
    assert (only_run_dir(trained, "ERM") / "valid.csv").read_text() == first_csv


def test_every_objective_trains_evaluates_and_is_compared(trained):
    import numpy as np
    assert set(criterion.OBJECTIVES) <= set(TRAINED_OBJECTIVES)
    for objective in criterion.OBJECTIVES:
        result = call("2_test.py", "--model_index=41", "--dataset=tiny", f"--objective={objective}", "--datetime=latest",
                      cwd=trained)
        assert result.returncode == 0, result.stderr
        run_dir = only_run_dir(trained, objective)
        assert json.loads((run_dir / "test_metrics.json").read_text())["images"] == 15
        assert np.allclose(np.load(run_dir / "test_predictions.npz")["probs"].sum(axis=1), 1, atol=1e-5)
    result = call("compare.py", "--dataset=tiny", "--model_index=41", cwd=trained)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:1 + len(criterion.OBJECTIVES)]
    assert [row.split()[0] for row in rows] == list(criterion.OBJECTIVES)
    assert all(" test " in row for row in rows)


@pytest.mark.parametrize("extra", [
    ["--objective=LDAM", "--drw", "--drw_epoch=1"], ["--objective=LA", "--la_tau=0.5"],
    ["--objective=FL", "--class_balanced"], ["--objective=CCE", "--label_smoothing=0.1"],
    ["--objective=ERM", "--sampler=class_balanced"], ["--objective=ERM", "--sampler=sqrt", "--cache_mb=0"],
])
def test_other_objectives_and_samplers_train(workdir, extra):
    train_run(workdir, *extra, epochs=1)
    objective = extra[0].split("=")[1]
    run_dir = only_run_dir(workdir, objective)
    assert len(runs.read_csv(run_dir / "valid.csv")) == 1
    assert torch.load(run_dir / "last.pth", weights_only=True)["args"]["objective"] == objective


def test_file_path_without_cache_trains(workdir):
    train_run(workdir, "--cache_mb=0", "--workers=1", epochs=1)
    assert len(files_under(only_run_dir(workdir, "ERM"))) >= 4


def test_ldam_uses_a_normed_head_that_2_test_rebuilds(trained):
    workdir = trained
    run_dir = only_run_dir(workdir, "LDAM")
    state = torch.load(runs.best_checkpoint_path(run_dir), weights_only=True)
    assert state["normed_head"] is True and state["head_scale"] == 1.0 and state["args"]["normed_head"] is True
    assert float(state["model"]["fc.scale"]) == 1.0 and "fc.bias" not in state["model"]
    result = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM", "--datetime=latest",
                  "--split=valid", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"top-1 {state['acc']:.2f} %" in result.stdout  # the same network, rebuilt from the checkpoint
    # Probabilities are those LDAM trains: softmax(s * cosine), not softmax(cosine).
    import numpy as np
    import loader
    from get_model import build_network
    saved = np.load(run_dir / "valid_predictions.npz")
    model = build_network(41, 3, normed_head=True)
    model.load_state_dict(state["model"])
    model.eval()
    split = loader.load_splits(workdir / "a_datasets", "tiny")["valid"]
    images = torch.stack([loader.decode_image(path, 16, 16) for path in split.paths])
    with torch.no_grad():
        cosines = model(loader.normalise(images, state["mean"], state["std"]))
    assert cosines.abs().max() <= 1
    assert np.allclose(saved["probs"], torch.softmax(30 * cosines, dim=1).numpy(), atol=1e-5)


@pytest.mark.parametrize("flag,normed,scale", [("--normed_head", True, 30.0), ("--no-normed_head", False, None)])
def test_normed_head_can_be_forced_on_or_off(workdir, flag, normed, scale):
    objective = "ERM" if normed else "LDAM"
    train_run(workdir, f"--objective={objective}", flag, epochs=1)
    state = torch.load(runs.best_checkpoint_path(only_run_dir(workdir, objective)), weights_only=True)
    assert state["normed_head"] is normed and ("fc.scale" in state["model"]) is normed
    if normed:
        assert float(state["model"]["fc.scale"]) == scale


def toy_ldam_drw_losses(extra_flags, steps=40, seed=0):
    """LDAM-DRW on an imbalanced toy set (4 classes, 200 to 6 images), built as 1_train.py builds it."""
    train = script("1_train")
    args = train.get_args_parser().parse_args(["--model_index=41", "--dataset=toy", "--objective=LDAM", "--drw",
                                               "--seed=0", "--height=8", "--width=8", *extra_flags])
    train.check_args(args)
    generator = torch.Generator().manual_seed(seed)
    counts = [200, 60, 20, 6]
    centres = torch.randn(len(counts), 3, 8, 8, generator=generator)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    images = centres[labels] + torch.randn(len(labels), 3, 8, 8, generator=generator)
    model, _ = train.build_model(args, len(counts), Runtime())
    loss_fn = criterion.get_criterion("LDAM", len(counts), class_counts=counts, drw=True, drw_epoch=0)
    loss_fn.set_epoch(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    losses = []
    for _ in range(steps):
        batch = torch.randint(0, len(labels), (32,), generator=generator)
        loss = loss_fn(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses[:5]) / 5, sum(losses[-5:]) / 5


def test_ldam_drw_trains_with_the_default_head():
    """s = 30 on unbounded logits scales the classifier's steps by 30: the loss explodes at lr 0.1.
    On the cosine logits of the normed head (the default for LDAM) it falls."""
    first, last = toy_ldam_drw_losses([])
    assert last < 1.0 and last < first / 5
    first, last = toy_ldam_drw_losses(["--no-normed_head"])
    assert last > 50  # what 1_train.py did before the normed head: LDAM-DRW diverged


def test_config_records_arguments_and_environment(trained):
    import platform
    import numpy
    import torchvision

    run_dir = only_run_dir(trained, "ERM")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["seed"] == 0 and config["args"]["objective"] == "ERM"
    environment = config["environment"]
    assert environment["python"] == platform.python_version() and environment["torch"] == torch.__version__
    assert environment["torchvision"] == torchvision.__version__ and environment["numpy"] == numpy.__version__
    assert environment["device"] == "cpu" and environment["processor"]
    assert "git_commit" in environment
    state = torch.load(runs.best_checkpoint_path(run_dir), weights_only=True)
    assert state["environment"] == environment


def test_every_run_records_its_settings_and_metrics_as_tensorboard_hparams(trained):
    """Read back with TensorBoard's own reader: the HParams plugin's session record holds the run's settings, and
    the best valid and (after 2_test.py) test metrics are scalars of that run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = run_dir_of(trained, "CCE")
    assert call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=CCE", "--datetime=latest",
                cwd=trained).returncode == 0
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hparams = {key: value for key, value in start.hparams.items()}
    assert hparams["objective"].string_value == "CCE" and hparams["seed"].number_value == 0
    assert hparams["ccegamma"].number_value == 1.0 and hparams["model"].string_value == "SimpleCNN"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {"hparams/best_valid_balanced_acc", "hparams/test_balanced_acc"} <= {
        info.name.tag for info in experiment.metric_infos}
    tags = events.Tags()["scalars"]
    assert "hparams/best_valid_balanced_acc" in tags and "hparams/test_balanced_acc" in tags
    assert "train/lr" in tags and "valid/lr" not in tags
