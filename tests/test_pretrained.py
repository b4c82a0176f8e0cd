"""Fine-tuning: --pretrained (ImageNet through torchvision's cache, or a state dict file), --freeze_backbone,
today's networks and their input sizes, AdamW and the cosine schedule."""
import hashlib
import json
import math

import pytest
import torch

import get_model
import runs
import utils
from runtime import Runtime
from conftest import FAST, call, script

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def only_run_dir(workdir, objective="ERM", model="SimpleCNN"):
    (run_dir,) = (workdir / "logs" / model / "tiny" / objective).iterdir()
    return run_dir


def train_args(*extra):
    train = script("1_train")
    args = train.get_args_parser().parse_args([*FAST, *extra])
    return train, train.check_args(args)


def test_pretrained_file_loads_fitting_weights_and_reports_the_rest(workdir, monkeypatch):
    source = get_model.build_network(41, 5)  # 5 classes: its classifier cannot fit tiny's 3
    torch.save(source.state_dict(), workdir / "weights.pth")
    monkeypatch.chdir(workdir)
    train, args = train_args("--pretrained=weights.pth")
    model, _ = train.build_model(args, 3, Runtime())
    first = "features.0.0.weight"
    assert torch.equal(model.state_dict()[first], source.state_dict()[first])
    assert not torch.equal(model.state_dict()["fc.bias"][:3], source.state_dict()["fc.bias"][:3])

    result = call("1_train.py", *FAST, "--epochs=1", "--pretrained=weights.pth", cwd=workdir)
    assert result.returncode == 0, result.stderr
    report = [line for line in result.stdout.splitlines() if line.startswith("--pretrained")]
    assert len(report) == 1 and "skipped 2 weight(s) that do not fit: fc.bias, fc.weight" in report[0]
    state = torch.load(runs.best_checkpoint_path(only_run_dir(workdir)), weights_only=True)
    assert (state["mean"], state["std"]) == IMAGENET
    evaluated = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                     "--split=valid", cwd=workdir)
    assert evaluated.returncode == 0 and f"top-1 {state['acc']:.2f} %" in evaluated.stdout  # same normalisation

    # The run records the file it started from: a plan finds it current until another file takes that name; in
    # another checkout, the same file under the same relative name is the same
    run_dir = only_run_dir(workdir)
    config = json.loads((run_dir / "config.json").read_text())
    original = (workdir / "weights.pth").read_bytes()
    assert config["pretrained_sha256"] == hashlib.sha256(original).hexdigest()
    assert config["args"]["pretrained"] == str(workdir / "weights.pth")  # recorded by its absolute path
    flags = [*FAST, "--epochs=1", "--pretrained=weights.pth"]
    assert runs.differences(run_dir, flags) == []
    torch.save(get_model.build_network(41, 5).state_dict(), workdir / "weights.pth")  # a source trained again
    assert runs.differences(run_dir, flags) == ["pretrained"]
    clone = workdir.parent / "clone"
    clone.mkdir()
    (clone / "weights.pth").write_bytes(original)
    monkeypatch.chdir(clone)
    assert runs.differences(run_dir, flags) == []  # by its SHA-256
    del config["pretrained_sha256"]  # a run from before that record: by path
    (run_dir / "config.json").write_text(json.dumps(config))
    assert runs.differences(run_dir, flags) == ["pretrained"]  # the recorded file is on this machine, elsewhere
    (workdir / "weights.pth").unlink()
    assert runs.differences(run_dir, flags) == []  # not here: the path the plan gives ends the recorded one
    (workdir / "weights.pth").write_bytes(original)
    (clone / "weights.pth").unlink()
    assert runs.differences(run_dir, flags) == []  # a clone without the file: the same name is the same file
    assert runs.differences(run_dir, [*flags[:-1], "--pretrained=other/weights.pth"]) == ["pretrained"]


def test_freeze_backbone_trains_the_classifier_only(workdir):
    source = get_model.build_network(41, 3)
    torch.save({"model": source.state_dict()}, workdir / "run.pth")  # a checkpoint of this project
    result = call("1_train.py", *FAST, "--epochs=1", "--pretrained=run.pth", "--freeze_backbone", "--bn_stats=frozen",
                  cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stdout
    trained = torch.load(only_run_dir(workdir) / "last.pth", weights_only=True)["model"]
    for name, value in source.state_dict().items():  # batch-norm statistics included (--bn_stats frozen)
        changed = not torch.equal(trained[name], value)
        assert changed == name.startswith("fc."), name


def imagenet_cache(tmp_path, index):
    """A torch hub cache holding a (random) file under the name of ``index``'s ImageNet weights."""
    import torchvision.models as models
    entry = get_model.MODELS[index]
    weights = models.get_model_weights(entry.name).DEFAULT
    network = getattr(models, entry.name)(weights=None, num_classes=1000, **entry.build.options)
    folder = tmp_path / "torch_home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(network.state_dict(), folder / weights.url.rsplit("/", 1)[-1])
    return tmp_path / "torch_home", network


def test_imagenet_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    torch_home, network = imagenet_cache(tmp_path, 52)  # mobilenet_v3_small
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    model = get_model.build_network(52, 4, pretrained="imagenet")
    first = "features.0.0.weight"
    assert torch.equal(model.state_dict()[first], network.state_dict()[first])
    assert model.classifier[-1].out_features == 4


def test_imagenet_weights_offline_and_not_cached_is_one_error_line(workdir, monkeypatch):
    empty = workdir / "empty_torch_home"
    monkeypatch.setenv("TORCH_HOME", str(empty))
    result = call("1_train.py", *FAST, "--model_index=9", "--height=32", "--width=32", "--pretrained", cwd=workdir)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: the ImageNet weights of resnet18 are not cached and could not be downloaded")
    assert f"put resnet18-f37072fd.pth (from https://download.pytorch.org/models/resnet18-f37072fd.pth) into " \
           f"{empty}/hub/checkpoints/" in lines[0]
    assert not list((workdir / "logs").iterdir())


def test_pretrained_needs_imagenet_weights(workdir):
    result = call("1_train.py", *FAST, "--pretrained", cwd=workdir)
    assert result.returncode == 2 and "SimpleCNN has no ImageNet weights in torchvision" in result.stderr
    missing = call("1_train.py", *FAST, "--pretrained=nothing.pth", cwd=workdir)
    assert missing.returncode == 2 and "--pretrained: no file nothing.pth" in missing.stderr


@pytest.mark.parametrize("index", range(47, 57))
def test_todays_networks_refuse_too_small_images(index):
    entry = get_model.MODELS[index]
    assert entry.imagenet
    with torch.device("cpu" if "regnet" in entry.name else "meta"):
        model = get_model.get_model(index)(5)
    with pytest.raises(ValueError, match=rf"{entry.name} (cannot take 16x16 images|takes 224x224 images only)"):
        get_model.check_input_size(model, 16, 16, index)


def test_table_says_weights_and_input_sizes():
    import io
    out = io.StringIO()
    get_model.print_table(out)
    rows = {line.split()[1]: line for line in out.getvalue().splitlines()[1:]}
    assert rows["vit_b_16"].split()[-3:] == ["224", "only", "yes"]
    assert rows["efficientnet_b0"].split()[-3:] == [">=", "32", "yes"]
    assert rows["SimpleCNN"].split()[-1] == "-" and rows["alexnet"].split()[-3:] == [">=", "63", "yes"]


def test_adamw_with_cosine_lrs_and_state(workdir):
    result = call("1_train.py", *FAST, "--epochs=3", "--optimizer=adamw", "--schedule=cosine", "--lr=0.002", cwd=workdir)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(workdir)
    iters = 3  # 24 images, batch 8
    lrs = [float(row["lr"]) for row in runs.read_csv(run_dir / "train.csv")]
    expected = [0.002 * 0.5 * (1 + math.cos(math.pi * (epoch * iters + iters - 1) / 9)) for epoch in range(3)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    state = torch.load(run_dir / "last.pth", weights_only=True)
    assert "exp_avg_sq" in state["optimizer"]["state"][0]  # AdamW's state, not SGD's momentum
    assert state["args"]["weight_decay"] == 0.05 and state["optimizer"]["param_groups"][0]["weight_decay"] == 0.05
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["optimizer"] == "adamw" and config["args"]["schedule"] == "cosine"


def test_resumed_cosine_run_equals_uninterrupted(workdir, monkeypatch):
    train = script("1_train")
    argv = [*FAST, "--epochs=3", "--schedule=cosine", "--warmup"]
    monkeypatch.chdir(workdir)
    assert utils.run_cli(train.main, train.get_args_parser(), argv) == 0
    reference = only_run_dir(workdir)
    reference_csv = (reference / "valid.csv").read_text()
    reference.rename(workdir / "reference")
    original, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):  # Ctrl-C during the second epoch
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    assert utils.run_cli(train.main, train.get_args_parser(), argv) == 130
    monkeypatch.setattr(train, "train_one_epoch", original)
    run_dir = only_run_dir(workdir)
    assert len(runs.read_csv(run_dir / "valid.csv")) == 1
    assert utils.run_cli(train.main, train.get_args_parser(), [f"--resume={run_dir}"]) == 0
    assert (run_dir / "valid.csv").read_text() == reference_csv


def test_a_checkpoint_of_a_run_brings_its_normalisation(workdir):
    """--pretrained with a run's checkpoint (pretrained here on another dataset): the inputs are normalised as that
    network learned them, not with ImageNet's statistics; a plain state dict keeps the library's (ImageNet's)."""
    source = get_model.build_network(41, 3)
    saved = ([0.25, 0.5, 0.75], [0.1, 0.2, 0.3])
    torch.save({"model": source.state_dict(), "mean": saved[0], "std": saved[1]}, workdir / "run.pth")
    torch.save(source.state_dict(), workdir / "plain.pth")
    assert runs.checkpoint_normalisation(workdir / "run.pth") == saved
    assert runs.checkpoint_normalisation(workdir / "plain.pth") is None and runs.checkpoint_normalisation("imagenet") is None
    result = call("1_train.py", *FAST, "--epochs=1", "--pretrained=run.pth", cwd=workdir)
    assert result.returncode == 0, result.stderr
    state = torch.load(runs.best_checkpoint_path(only_run_dir(workdir)), weights_only=True)
    assert (state["mean"], state["std"]) == saved
