"""The integer model registry."""
import runpy

import pytest
import torch

import get_model
from b_models.heads import NormedLinear
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
    meta = "regnet" not in get_model.model_name(index)  # RegNet computes its widths with tensors
    with torch.device("meta" if meta else "cpu"):  # meta: no memory, no init cost
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


def test_table_script_lists_every_model(capsys):
    runpy.run_path(str(ROOT / "get_model.py"), run_name="__main__")  # python get_model.py, in this process
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(get_model.MODELS) + 1
    assert lines[37].split()[:2] == ["36", "ResNet34"]
    assert lines[42].split() == ["41", "SimpleCNN", "141,034", ">=", "4", "-"]


# He et al. (2016), Table 6: 0.27 M, 0.46 M, 0.66 M, 0.85 M and 1.7 M parameters (CIFAR-10).
CIFAR_RESNETS = {42: ("ResNet20", 269_722), 43: ("ResNet32", 464_154), 44: ("ResNet44", 658_586),
                 45: ("ResNet56", 853_018), 46: ("ResNet110", 1_727_962)}


@pytest.mark.parametrize("index", sorted(CIFAR_RESNETS))
def test_cifar_resnets_of_he_et_al(index):
    name, parameters = CIFAR_RESNETS[index]
    assert get_model.model_name(index) == name
    model = get_model.get_model(index)(10)
    assert sum(p.numel() for p in model.parameters()) == parameters
    depth = int(name[len("ResNet"):])
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == depth - 1  # parameter-free shortcuts: only the stem and the blocks convolve
    assert sorted({m.out_channels for m in convolutions}) == [16, 32, 64]
    if index <= 43:  # the deep ones cost seconds on a CPU
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
            assert model.layers(model.stem(torch.randn(1, 3, 32, 32))).shape == (1, 64, 8, 8)


def test_zero_pad_shortcut_subsamples_and_pads():
    from b_models.blocks import ZeroPadShortcut
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    out = ZeroPadShortcut(2)(x)
    assert out.shape == (1, 4, 2, 2)
    assert torch.equal(out[0, 1:3], x[0, :, ::2, ::2]) and not out[0, 0].any() and not out[0, 3].any()


def test_normed_head_gives_cosine_logits():
    model = get_model.build_network(43, 7, normed_head=True)
    head = model.fc
    assert isinstance(head, NormedLinear) and head.weight.shape == (7, 64)
    logits = model(torch.randn(5, 3, 32, 32) * 100)
    assert logits.abs().max() <= 1 + 1e-6
    features = model.pool(model.layers(model.stem(torch.randn(3, 3, 32, 32)))).flatten(1)
    rows = torch.nn.functional.normalize(head.weight, dim=1)
    assert torch.allclose(rows.norm(dim=1), torch.ones(7))
    expected = torch.nn.functional.normalize(features, dim=1) @ rows.T
    assert torch.allclose(head(features), expected, atol=1e-6)
    scaled = get_model.build_network(41, 3, normed_head=True, head_scale=30.0)
    assert float(scaled.fc.scale) == 30.0 and float(scaled.state_dict()["fc.scale"]) == 30.0  # saved with the weights


@pytest.mark.parametrize("index", [9, 30, 31, 41])  # resnet18 (fc), mobilenet_v2 and mnasnet (classifier[1]), SimpleCNN
def test_normed_head_replaces_the_classifier_of_any_linear_network(index):
    with torch.device("meta"):
        model = get_model.build_network(index, 6, normed_head=True)
    assert sum(isinstance(m, NormedLinear) for m in model.modules()) == 1
    assert not any(isinstance(m, torch.nn.Linear) and m.out_features == 6 for m in model.modules())


def test_normed_head_needs_a_linear_classifier():
    with pytest.raises(ValueError, match="SqueezeNet has no linear classifier"):
        get_model.build_network(40, 4, normed_head=True)


def test_cosine_head_starts_with_unit_norm_class_vectors_as_in_cao_et_al():
    torch.manual_seed(0)
    head = NormedLinear(64, 10)
    assert torch.allclose(head.weight.norm(dim=1), torch.ones(10), atol=1e-6)
    torch.manual_seed(0)
    raw = torch.empty(10, 64).uniform_(-1, 1)  # the same draw, before the rescaling
    assert torch.allclose(head.weight, raw / raw.norm(dim=1, keepdim=True))
    assert float(raw.norm(dim=1).mean()) > 4  # what the vectors would start at without it


def test_class_scales_need_a_linear_classifier_and_transform_input_is_rebuilt():
    from b_models.heads import ClassScales, add_class_scales
    model = get_model.build_network(41, 6, lws=True)
    assert isinstance(model.fc, ClassScales) and torch.equal(model.fc.scales, torch.ones(6))
    with pytest.raises(ValueError, match="classifies with a convolution; --lws scales a linear classifier"):
        add_class_scales(get_model.build_network(40, 8), 8)
    with torch.device("meta"):
        assert get_model.build_network(25, 5, transform_input=True).transform_input is True  # GoogLeNet
        assert get_model.build_network(25, 5).transform_input is False


def test_the_names_a_plan_reads_without_torch_are_the_registrys():
    """3_run.sh names a plan's run folders from b_models/names.py, which imports no torch: the same names in the
    same order as get_model.MODELS, and an index the registry has not is the same error (that it imports no torch:
    tests/test_structure.py)."""
    from b_models import names
    assert names.NAMES == tuple(entry.name for entry in get_model.MODELS.values())
    assert [names.folder_name(index) for index in get_model.MODELS] == [get_model.network(index).name
                                                                          for index in get_model.MODELS]
    with pytest.raises(ValueError, match="unknown model index 57.*python get_model.py"):
        names.folder_name(57)
