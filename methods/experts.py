"""The multi-expert network of RIDE (Wang et al., ICLR 2021), which SADE shares: the early layers of a network
shared, then several experts, each a copy of its later layers (narrower by default) with a classifier of its own.

``multi_expert`` builds it from a registry network: the CIFAR ResNets (indices 42-46) as RIDE's
``model/ldam_drw_resnets/ride_resnet_cifar.py`` (frank-xwang/RIDE-LongTailRecognition at ab8be5c) splits ResNet-32,
and SimpleCNN (index 41) along the same seam: the full-resolution layers shared, the rest per expert.
"""
import torch
import torch.nn as nn

from b_models.blocks import BasicBlock
from b_models.he_cifar_resnets import CifarResNet
from b_models.heads import NormedLinear
from b_models.simple_cnn import SimpleCNN, conv_bn


class MultiExpert(nn.Module):
    """``shared`` layers, then per expert ``branches[i]`` (its layers, ending in global pooling) and ``heads[i]`` (its
    classifier).  ``forward(x)`` is the mean of the expert logits, what is evaluated (``ride_resnet_cifar.py:196``);
    ``forward(x, experts=True)`` the expert logits stacked, ``[batch, experts, classes]``, what the losses read."""

    several_classifiers = True  # b_models.heads.find_classifier refuses it: no one layer classifies

    def __init__(self, shared, branches, heads):
        super().__init__()
        self.shared, self.branches, self.heads = shared, nn.ModuleList(branches), nn.ModuleList(heads)
        self.num_experts = len(self.heads)

    def forward(self, x, experts=False):
        shared = self.shared(x)
        logits = torch.stack([head(branch(shared)) for branch, head in zip(self.branches, self.heads)], dim=1)
        return logits if experts else logits.mean(dim=1)


def _cifar_resnet_split(model):
    """The stem and the first stage shared (``ride_resnet_cifar.py:105-107``), the other two stages per expert
    (``:122-124``), built as the network builds its blocks."""
    first_stage = len(model.layers) // 3
    return (nn.Sequential(model.stem, *model.layers[:first_stage]), model.layers[first_stage:],
            lambda in_planes, planes, stride: BasicBlock(in_planes, planes, stride, "zero_pad"))


def _simple_cnn_split(model):
    """The two full-resolution convolutions shared (as RIDE shares ResNet-32's full-resolution stage), the three
    after them per expert (the last module of ``features`` is the pooling, which each expert has)."""
    return model.features[:2], model.features[2:-1], conv_bn


# Network -> (its split into shared layers, the layers each expert copies and their builder; whether the network
# initialises its convolutions and linear layers with kaiming_normal, which the experts' copies then follow).
_SPLITS = {CifarResNet: (_cifar_resnet_split, True), SimpleCNN: (_simple_cnn_split, False)}


def _expert_layers(layers, reduce, build):
    """Fresh copies of ``layers`` by ``build(in_channels, out_channels, stride)``, each as wide as its first
    convolution, or 3/4 of that with ``reduce`` (RIDE's ``reduce_dimension``: 32/64 -> 24/48,
    ``ride_resnet_cifar.py:110-120``); and the width they end in."""
    in_channels, copies = None, []
    for layer in layers:
        conv = next(module for module in layer.modules() if isinstance(module, nn.Conv2d))
        in_channels = conv.in_channels if in_channels is None else in_channels
        out_channels = conv.out_channels * 3 // 4 if reduce else conv.out_channels
        copies.append(build(in_channels, out_channels, conv.stride[0]))
        in_channels = out_channels
    return copies, in_channels


def _head_like(classifier, in_features):
    """A classifier of the same kind as ``classifier`` (linear, or cosine with the same scale) over ``in_features``."""
    if isinstance(classifier, NormedLinear):
        return NormedLinear(in_features, classifier.out_features, float(classifier.scale))
    if type(classifier) is nn.Linear:
        return nn.Linear(in_features, classifier.out_features, bias=classifier.bias is not None)
    raise ValueError(f"a multi-expert network copies a linear or cosine classifier, not {type(classifier).__name__}")


def multi_expert(model, experts, reduce=True):
    """RIDE's layout from ``model``, a registry network built with its head: its early layers shared (the modules
    themselves, so as initialised), and ``experts`` new copies of its later layers, each as wide or, with ``reduce``,
    3/4 as wide, ending in global pooling and a classifier like the network's.  ``ValueError`` for another network."""
    split, kaiming = next((entry for kind, entry in _SPLITS.items() if isinstance(model, kind)), (None, False))
    if split is None:
        raise ValueError(f"a multi-expert network is built from SimpleCNN or a CIFAR ResNet (model indices 41-46), "
                         f"not {type(model).__name__}")
    if experts < 1:
        raise ValueError(f"a multi-expert network needs at least one expert, not {experts}")
    shared, later, build = split(model)
    branches, heads = [], []
    for _ in range(experts):
        layers, width = _expert_layers(later, reduce, build)
        branches.append(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        heads.append(_head_like(model.fc, width))
    if kaiming:  # as the network initialises itself; a cosine head keeps its own start (ride_resnet_cifar.py:35-45)
        for module in (*branches, *heads):
            for layer in module.modules():
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(layer.weight)
    return MultiExpert(shared, branches, heads)
