"""The integer model registry."""
import subprocess
import sys

import pytest
import torch

import get_model
from conftest import ROOT

ORIGINAL_NAMES = {0: "alexnet", 1: "vgg11", 8: "vgg19_bn", 9: "resnet18", 13: "resnet152", 15: "resnext101_32x8d",
                  17: "wide_resnet101_2", 18: "squeezenet1_0", 23: "densenet201", 24: "inception_v3",
                  25: "googlenet", 26: "shufflenet_v2_x0_5", 29: "shufflenet_v2_x2_0", 30: "mobilenet_v2",
                  31: "mnasnet0_5", 34: "mnasnet1_3", 35: "ResNet18", 36: "ResNet34", 37: "ResNet50",
                  38: "ResNet101", 39: "ResNet152", 40: "SqueezeNet"}


def test_original_numbering_is_kept():
    for index, name in ORIGINAL_NAMES.items():
        assert get_model.get_model(index).__name__ == name
    assert sorted(get_model.MODELS)[:41] == list(range(41))


@pytest.mark.parametrize("index", sorted(get_model.MODELS))
def test_every_index_builds(index):
    with torch.device("meta"):  # no memory, no init cost: checks the constructor and the head size
        model = get_model.get_model(index)(7)
    last_linear = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    assert 7 in (getattr(last_linear, "out_features", None), getattr(last_linear, "out_channels", None))


@pytest.mark.parametrize("index", [35, 36, 40, 41, 9, 18, 26, 30])
def test_forward_on_small_images(index):
    model = get_model.get_model(index)(5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("index", [0, 24])
def test_too_small_input_is_a_clear_error(index):
    model = get_model.get_model(index)(5)
    with pytest.raises(ValueError, match="cannot take 32x32 images.*--height/--width"):
        get_model.check_input_size(model, 32, 32)


def test_small_networks_take_other_sizes():
    for index in (35, 40, 41):
        get_model.check_input_size(get_model.get_model(index)(3), 16, 24)


def test_unknown_index():
    with pytest.raises(ValueError, match="unknown model index 999.*python get_model.py"):
        get_model.get_model(999)


def test_table_script_lists_every_model():
    out = subprocess.run([sys.executable, str(ROOT / "get_model.py")], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == len(get_model.MODELS) + 1
    assert lines[37].split()[:2] == ["36", "ResNet34"]
    assert lines[42].split() == ["41", "SimpleCNN", "141,034"]
