"""The model registry: an integer index per network, as in the original project.

Indices never change, so published command lines keep working; add a network by
appending one line to ``MODELS``.  ``python get_model.py`` prints the table.
No pretrained weights are ever downloaded.
"""
import sys

import importlib

import torch

from b_models.cifar_resnet import ResNet18, ResNet34, ResNet50, ResNet101, ResNet152
from b_models.heads import NormedLinear, replace_classifier
from b_models.resnet_cifar import ResNet20, ResNet32, ResNet44, ResNet56, ResNet110
from b_models.simple_cnn import SimpleCNN
from b_models.squeezenet import SqueezeNet


def _torchvision(name, **options):
    def build(num_classes):
        # Imported on first use: torchvision.models takes a second to import, small networks don't need it.
        models = importlib.import_module("torchvision.models")
        return getattr(models, name)(weights=None, num_classes=num_classes, **options)
    return name, build


def _small(network):
    return network.__name__, network


MODELS = dict(enumerate([
    _torchvision("alexnet"),
    _torchvision("vgg11"), _torchvision("vgg11_bn"), _torchvision("vgg13"), _torchvision("vgg13_bn"),
    _torchvision("vgg16"), _torchvision("vgg16_bn"), _torchvision("vgg19"), _torchvision("vgg19_bn"),
    _torchvision("resnet18"), _torchvision("resnet34"), _torchvision("resnet50"),
    _torchvision("resnet101"), _torchvision("resnet152"),
    _torchvision("resnext50_32x4d"), _torchvision("resnext101_32x8d"),
    _torchvision("wide_resnet50_2"), _torchvision("wide_resnet101_2"),
    _torchvision("squeezenet1_0"), _torchvision("squeezenet1_1"),
    _torchvision("densenet121"), _torchvision("densenet161"), _torchvision("densenet169"), _torchvision("densenet201"),
    _torchvision("inception_v3", aux_logits=False, init_weights=False),
    _torchvision("googlenet", aux_logits=False, init_weights=False),
    _torchvision("shufflenet_v2_x0_5"), _torchvision("shufflenet_v2_x1_0"),
    _torchvision("shufflenet_v2_x1_5"), _torchvision("shufflenet_v2_x2_0"),
    _torchvision("mobilenet_v2"),
    _torchvision("mnasnet0_5"), _torchvision("mnasnet0_75"), _torchvision("mnasnet1_0"), _torchvision("mnasnet1_3"),
    # 35-40: networks for small (CIFAR-sized) images.
    _small(ResNet18), _small(ResNet34), _small(ResNet50), _small(ResNet101), _small(ResNet152),
    _small(SqueezeNet),
    # 41+: added by this project.
    _small(SimpleCNN),
    # 42-46: He et al.'s CIFAR ResNets (16-32-64 channels), ResNet-32 as in the long-tail literature.
    _small(ResNet20), _small(ResNet32), _small(ResNet44), _small(ResNet56), _small(ResNet110),
]))


def get_model(model_index):
    """The constructor ``f(num_classes) -> nn.Module`` of ``model_index``; ``f.__name__`` is its log name."""
    if model_index not in MODELS:
        raise ValueError(f"unknown model index {model_index}; valid indices are 0-{max(MODELS)} "
                         "(run 'python get_model.py' for the table)")
    name, build = MODELS[model_index]

    def constructor(num_classes):
        return build(num_classes)

    constructor.__name__ = name
    return constructor


def build_network(model_index, num_classes, normed_head=False, head_scale=1.0):
    """Network ``model_index`` for ``num_classes``; with ``normed_head`` its classifier is a ``NormedLinear``."""
    model = get_model(model_index)(num_classes)
    if normed_head:
        replace_classifier(model, num_classes, lambda features, classes: NormedLinear(features, classes, head_scale))
    return model


def model_name(model_index):
    """The log-folder name of ``model_index`` (e.g. ``ResNet34``)."""
    return get_model(model_index).__name__


def check_input_size(model, height, width):
    """Raise ``ValueError`` if ``model`` cannot classify ``height x width`` images."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=next(model.parameters()).device))
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(f"{type(model).__name__} cannot take {height}x{width} images ({reason}); "
                         "use a larger --height/--width or a small-image network (indices 35-41)") from None
    finally:
        model.train(was_training)


def print_table(file=sys.stdout):
    """Print index, name and parameter count of every registered network."""
    print(f"{'index':>5}  {'name':<20} {'parameters':>12}", file=file)
    for index, (name, build) in MODELS.items():
        with torch.device("meta"):
            parameters = sum(p.numel() for p in build(10).parameters())
        print(f"{index:>5}  {name:<20} {parameters:>12,}", file=file)


if __name__ == "__main__":
    print_table()
