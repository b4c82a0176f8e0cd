"""Backbones by name (``--model timm:NAME``, ``--model clip:NAME``; b_models/foundation.py): tiny random timm and
open_clip models built here, their weights loaded from local files only (safetensors, torch.save'd tensors, the
libraries' own caches), a pickled model and a missing file refused in one line, and a run trained, tested and
applied without the files it came from."""
import json
import re

import pytest
import torch
from safetensors.torch import save_file

import get_model
from conftest import FAST, call, run_dir_of

TIMM = "timm:test_resnet"  # timm's own test network: 0.4 M parameters, any input size, mean/std 0.5
NAMED = [flag for flag in FAST if not flag.startswith("--model_index")]
# An open_clip model config small enough for a CPU: a 2-layer ViT on 32 x 32 images (and a 1-layer text tower,
# which this project never builds but the weights of a whole CLIP carry).
TINY_CLIP = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2,
                                             "head_width": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


def same_weights(model, state, prefix=""):
    own = model.state_dict()
    return all(torch.equal(own[prefix + name], value) for name, value in state.items())


def clip_files(folder):
    """``tiny.json`` (the config) and ``clip.pth``, the state dict of a whole random CLIP, as open_clip saves one."""
    import open_clip  # here, not at collection: every test process would import it

    (folder / "tiny.json").write_text(json.dumps(TINY_CLIP))
    torch.manual_seed(1)
    clip = open_clip.CLIP(**TINY_CLIP)
    torch.save(clip.state_dict(), folder / "clip.pth")
    return clip


def test_local_files_give_the_same_weights(tmp_path):
    torch.manual_seed(0)
    source = get_model.build_network(TIMM, 3)
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    torch.save(source.state_dict(), tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        model = get_model.build_network(TIMM, 3)
        assert get_model.load_matching(model, tmp_path / name) == []
        assert same_weights(model, source.state_dict())
    clip = clip_files(tmp_path)
    save_file(clip.visual.state_dict(), tmp_path / "tower.safetensors")  # the image tower alone: no "visual."
    for name in ("clip.pth", "tower.safetensors"):
        model = get_model.build_network(f"clip:{tmp_path / 'tiny.json'}", 3)
        skipped = get_model.load_matching(model, tmp_path / name)
        assert same_weights(model, clip.visual.state_dict(), "visual.")
        text = [key for key in clip.state_dict() if not key.startswith("visual.")] if name == "clip.pth" else []
        assert sorted(skipped) == sorted(text + ["head.bias", "head.weight"])  # the text tower, the new classifier


def test_named_weights_come_from_the_local_cache_only(tmp_path, monkeypatch):
    import timm
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ValueError, match=r"timm weights test_resnet.r160_in1k are not in the Hugging Face cache .*hub, "
                                         r"and nothing is downloaded: .*hf download timm/test_resnet.r160_in1k "
                                         r"model.safetensors"):
        get_model.build_network(TIMM, 3, pretrained="imagenet")
    torch.manual_seed(0)
    published = timm.create_model("test_resnet")  # its 1000 ImageNet classes
    snapshot = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    save_file(published.state_dict(), snapshot / "model.safetensors")
    model = get_model.build_network(TIMM, 3, pretrained="imagenet")
    assert model.fc.out_features == 3  # a new classifier, every other weight the published one
    assert same_weights(model, {k: v for k, v in published.state_dict().items() if not k.startswith("fc.")})
    with pytest.raises(ValueError, match=r"clip:ViT-B-16 names no weights: add the open_clip tag"):
        get_model.build_network("clip:ViT-B-16", 3, pretrained="imagenet")


def test_pickled_missing_and_misnamed_are_one_line(workdir):
    import timm

    torch.save(timm.create_model("test_resnet", num_classes=3), workdir / "model.pth")  # a whole pickled model
    cases = {("--pretrained=model.pth",): "refusing to load .*model.pth: it is not a plain weights checkpoint",
             ("--pretrained=absent.safetensors",): "--pretrained: no file absent.safetensors",
             ("--model_index=41",): "give --model_index or --model, not both",
             ("--height=40", "--width=40", "--model=clip:tiny.json"): None}
    (workdir / "tiny.json").write_text(json.dumps(TINY_CLIP))
    for extra, message in cases.items():
        model = [] if any(flag.startswith("--model=") for flag in extra) else [f"--model={TIMM}"]
        result = call("1_train.py", *NAMED, "--epochs=1", *model, *extra, cwd=workdir)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert re.search(message or "clip-tiny takes 32x32 images only, not 40x40; pass "
                                                           "--height=32 --width=32", lines[0]), lines[0]
    bad = call("2_test.py", "--model=vit:base", "--dataset=tiny", "--objective=ERM", "--datetime=latest", cwd=workdir)
    assert bad.returncode == 2 and "argument --model: names no backbone: give timm:NAME or clip:NAME" in bad.stderr


def test_train_test_and_predict_a_timm_model(workdir):
    torch.manual_seed(0)
    save_file(get_model.build_network(TIMM, 3).state_dict(), workdir / "w.safetensors")
    result = call("1_train.py", *NAMED, "--epochs=1", f"--model={TIMM}", "--pretrained=w.safetensors", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"python 2_test.py --model={TIMM} --dataset=tiny" in result.stdout
    run_dir = run_dir_of(workdir, model="timm-test_resnet")
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    assert state["model_spec"] == TIMM and state["model_index"] is None and state["mean"] == [0.5, 0.5, 0.5]
    (workdir / "w.safetensors").unlink()  # a run needs no weight file once trained
    tested = call("2_test.py", f"--model={TIMM}", "--dataset=tiny", "--objective=ERM", "--datetime=latest", cwd=workdir)
    assert tested.returncode == 0, tested.stderr
    assert (run_dir / "test_metrics.json").is_file()
    images = workdir / "a_datasets" / "tiny" / "test"
    predicted = call("predict.py", f"--model={TIMM}", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                     "--images", images, "--out", workdir / "p.csv", cwd=workdir)
    assert predicted.returncode == 0, predicted.stderr
    other = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest", cwd=workdir)
    assert other.returncode == 2 and "no runs under" in other.stderr  # its own folder: logs/timm-test_resnet/


def test_train_test_and_predict_a_clip_encoder(workdir):
    import open_clip

    clip = clip_files(workdir)
    flags = [*NAMED, "--height=32", "--width=32", "--epochs=1", "--model=clip:tiny.json"]
    result = call("1_train.py", *flags, "--pretrained=clip.pth", cwd=workdir)
    assert result.returncode == 0, result.stderr
    run_dir = run_dir_of(workdir, model="clip-tiny")
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    assert state["model_config"]["vision_cfg"] == TINY_CLIP["vision_cfg"]
    assert state["model_config"]["text_cfg"] == TINY_CLIP["text_cfg"]  # what a method reading text features builds
    assert state["mean"] == pytest.approx(open_clip.constants.OPENAI_DATASET_MEAN)
    assert state["model"]["visual.conv1.weight"].shape == clip.visual.conv1.weight.shape
    for name in ("tiny.json", "clip.pth"):  # rebuilt from the checkpoint alone
        (workdir / name).unlink()
    tested = call("2_test.py", "--model=clip:tiny.json", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                  cwd=workdir)
    assert tested.returncode == 0, tested.stderr
    images = workdir / "a_datasets" / "tiny" / "test" / "cat"
    predicted = call("predict.py", "--model=clip:tiny.json", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                     "--images", images, "--out", workdir / "p.csv", cwd=workdir)
    assert predicted.returncode == 0, predicted.stderr
    assert len((workdir / "p.csv").read_text().splitlines()) == 1 + len(list(images.glob("[0-9]*")))
