"""The model registry: an integer index per network, as in the original project.

Indices never change, so published command lines keep working; add a network by
appending one line to ``MODELS``.  ``python get_model.py`` prints the table:
index, name, parameters, the smallest input size, and whether torchvision has
ImageNet weights for it.  Weights are only ever loaded on request
(``build_network(..., pretrained=...)``, ``1_train.py --pretrained``).

Beside the indices, any timm model and CLIP image encoder by name (``--model timm:NAME``, ``--model clip:NAME``;
``b_models/foundation.py``): a ``model_id`` below is an index or such a spec.
"""
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn

from b_models import foundation, names
from b_models.he_cifar_resnets import ResNet20, ResNet32, ResNet44, ResNet56, ResNet110
from b_models.heads import add_class_scales, cosine_head, find_classifier, fresh_classifier, replace_classifier
from b_models.simple_cnn import SimpleCNN
from b_models.small_image_resnets import ResNet18, ResNet34, ResNet50, ResNet101, ResNet152
from b_models.squeezenet import SqueezeNet
from utils import load_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Network:
    """A registry entry: ``build(num_classes)`` makes it with random weights."""
    name: str
    build: Callable[[int], nn.Module]
    min_size: int = 4  # smallest height and width it takes
    exact_size: Optional[int] = None  # the only size it takes (ViT; a (height, width) pair when not square)
    imagenet: bool = False  # torchvision has ImageNet weights for it
    # A backbone by name (b_models/foundation.py): built with its library's named weights, which expect this mean/std.
    pretrained: Optional[Callable[[int], nn.Module]] = None
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


def _torchvision_models():
    # Imported on first use: torchvision.models takes a second to import, small networks don't need it.
    return importlib.import_module("torchvision.models")


def _torchvision(name, min_size=32, exact_size=None, **options):
    """A torchvision network.  Below 32 px the last stage of these stride-32 networks sees a single pixel, so
    32 is their floor; some need more (AlexNet 63, Inception 75), ViT-B/16 takes 224 x 224 only."""
    def build(num_classes):
        return getattr(_torchvision_models(), name)(weights=None, num_classes=num_classes, **options)
    build.options = options
    return Network(name, build, min_size, exact_size, imagenet=True)


def _small(network):
    return Network(network.__name__, network)


MODELS = dict(enumerate([
    _torchvision("alexnet", min_size=63),
    _torchvision("vgg11"), _torchvision("vgg11_bn"), _torchvision("vgg13"), _torchvision("vgg13_bn"),
    _torchvision("vgg16"), _torchvision("vgg16_bn"), _torchvision("vgg19"), _torchvision("vgg19_bn"),
    _torchvision("resnet18"), _torchvision("resnet34"), _torchvision("resnet50"),
    _torchvision("resnet101"), _torchvision("resnet152"),
    _torchvision("resnext50_32x4d"), _torchvision("resnext101_32x8d"),
    _torchvision("wide_resnet50_2"), _torchvision("wide_resnet101_2"),
    _torchvision("squeezenet1_0"), _torchvision("squeezenet1_1"),
    _torchvision("densenet121"), _torchvision("densenet161"), _torchvision("densenet169"), _torchvision("densenet201"),
    _torchvision("inception_v3", min_size=75, aux_logits=False, init_weights=False, transform_input=False),
    _torchvision("googlenet", aux_logits=False, init_weights=False, transform_input=False),
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
    # 47-56: today's ImageNet networks, for fine-tuning at 224 x 224 (--pretrained).
    _torchvision("efficientnet_b0"), _torchvision("efficientnet_b1"), _torchvision("efficientnet_v2_s"),
    _torchvision("regnet_y_400mf"), _torchvision("regnet_y_800mf"),
    _torchvision("mobilenet_v3_small"), _torchvision("mobilenet_v3_large"),
    _torchvision("convnext_tiny"), _torchvision("vit_b_16", min_size=224, exact_size=224), _torchvision("swin_t"),
]))


def network(model_id, config=None):
    """The registry entry of ``model_id``, or a ``ValueError`` naming the valid indices; a backbone by name is
    described by its library (``config``: a CLIP run's recorded architecture)."""
    if isinstance(model_id, str):
        return Network(**foundation.describe(model_id, config))
    if model_id not in MODELS:
        raise names.unknown_index(model_id)
    return MODELS[model_id]


def chosen_model(args):
    """The network a command line names: ``--model`` (a backbone by name), else ``--model_index``."""
    return getattr(args, "model", None) or args.model_index


def get_model(model_id):
    """The constructor ``f(num_classes) -> nn.Module`` of ``model_id``; ``f.__name__`` is its log name."""
    entry = network(model_id)

    def constructor(num_classes):
        return entry.build(num_classes)

    constructor.__name__ = entry.name
    return constructor


def model_name(model_id):
    """The log-folder name of ``model_id`` (e.g. ``ResNet34``, ``timm-resnet18``), without importing a library."""
    return names.folder_name(model_id)


def architecture_config(model):
    """The architecture a named backbone in ``model`` was built from (a CLIP tower's config), or None: recorded in
    every checkpoint so the run is rebuilt without the file it came from."""
    return next((module.model_config for module in model.modules() if hasattr(module, "model_config")), None)


def pretrained_normalisation(model_id):
    """The mean/std the pretrained weights of ``model_id`` expect: ImageNet's for torchvision's, the library's for a
    backbone by name (timm's ``pretrained_cfg``, the CLIP tag's)."""
    entry = network(model_id)
    return entry.mean, entry.std


# ---------------------------------------------------------------- building, with weights and heads

def build_network(model_id, num_classes, normed_head=False, head_scale=1.0, pretrained=None, lws=False,
                  transform_input=None, config=None):
    """Network ``model_id`` for ``num_classes``.

    ``pretrained``: ``"imagenet"`` (torchvision's default weights, through its weights
    API and the torch hub cache; a backbone by name: its library's named weights, from
    its local cache) or the path of a state dict; the classifier stays
    new.  With ``normed_head`` the classifier is a ``NormedLinear``; with ``lws`` it is
    wrapped in per-class scales (``ClassScales``), as a run with ``--lws`` saved it.
    ``transform_input``: Inception-v3's and GoogLeNet's input rescaling, which their
    ImageNet weights need; a plain attribute, not a weight, so a checkpoint records it
    apart and the network is rebuilt with it (None: as built).  ``config``: a named backbone's recorded architecture.
    """
    entry = network(model_id, config)
    if pretrained == "imagenet":
        model = entry.pretrained(num_classes) if entry.pretrained else _imagenet_network(entry, num_classes)
    else:
        model = entry.build(num_classes)
        if pretrained is not None:
            load_matching(model, pretrained)
    if normed_head:
        if not isinstance(find_classifier(model, num_classes)[1], nn.Linear):
            raise ValueError(f"{entry.name} has no linear classifier layer to replace (its classifier is a "
                             "convolution)")
        replace_classifier(model, cosine_head(num_classes, head_scale), num_classes)
    if lws:
        add_class_scales(model, num_classes)
    if transform_input is not None and hasattr(model, "transform_input"):
        model.transform_input = transform_input
    return model


def load_run_weights(model, weights, keep_classifier=True):
    """The weights of a trained run (``--init_from``), all of them, or with ``keep_classifier=False`` all but the
    classifier's (which is then left as built: cRT re-learns it).  ``ValueError`` when they do not fit."""
    skip = ""
    if not keep_classifier:
        skip = find_classifier(model)[0] + "."
        weights = {name: value for name, value in weights.items() if not name.startswith(skip)}
    own = {name for name in model.state_dict() if not (skip and name.startswith(skip))}
    missing, unexpected = sorted(own - set(weights)), sorted(set(weights) - own)
    wrong = [name for name in own & set(weights) if model.state_dict()[name].shape != weights[name].shape]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise ValueError(f"the run's weights do not fit this network ({len(missing)} missing, {len(unexpected)} "
                         f"unexpected, {len(wrong)} of another shape, e.g. {first}): use the same --model_index, "
                         "classes and head (or --reinit_head)")
    model.load_state_dict(weights, strict=False)


def _imagenet_network(entry, num_classes):
    """torchvision's network with its ImageNet weights, read with ``weights_only=True`` from the torch hub cache
    (downloaded there first when missing), and a new classifier for ``num_classes``."""
    if not entry.imagenet:
        raise ValueError(f"{entry.name} has no ImageNet weights in torchvision; --pretrained needs one of: "
                         f"{', '.join(str(i) for i, e in MODELS.items() if e.imagenet)} (or --pretrained FILE)")
    models = _torchvision_models()
    url = models.get_model_weights(entry.name).DEFAULT.url
    options = dict(entry.build.options)
    if "transform_input" in options:  # Inception's and GoogLeNet's ImageNet weights expect their own input scaling
        options["transform_input"] = True
    model = getattr(models, entry.name)(weights=None, **options)
    path = _cached_weights(entry.name, url)
    state = _renamed_densenet_keys(load_checkpoint(path))
    missing, _ = model.load_state_dict(state, strict=False)  # the files also hold auxiliary heads we do not build
    if missing:
        raise ValueError(f"{path} does not hold the ImageNet weights of {entry.name} (it lacks {missing[0]} and "
                         f"{len(missing) - 1} more); delete it and download it again")
    replace_classifier(model, fresh_classifier(num_classes), num_outputs=1000)
    return model


def _cached_weights(name, url):
    """The weights file of ``url`` in the torch hub cache, downloaded there (checked against the hash in its name,
    nothing loaded) when it is missing; offline, a ``ValueError`` saying which file to put where."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    filename = url.rsplit("/", 1)[-1]
    path = cache / filename
    if not path.is_file():
        match = torch.hub.HASH_REGEX.search(filename)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None)
        except Exception as error:  # urllib, socket and hash errors all mean: the file has to be put there by hand
            reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
            raise ValueError(f"the ImageNet weights of {name} are not cached and could not be downloaded "
                             f"({reason}); put {filename} (from {url}) into {cache}/") from None
    return path


def _renamed_densenet_keys(state):
    """DenseNet's published weights name layers ``norm.1``, which torchvision's modules call ``norm1``."""
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    return {(match.group(1) + match.group(2) if (match := pattern.match(key)) else key): value
            for key, value in state.items()}


def load_matching(model, path):
    """Load the entries of a state dict file whose names and shapes fit ``model``; return the names skipped.

    The file is read by ``foundation.weights_in`` (a plain state dict, or a checkpoint's); one of a module of
    ``model`` alone (a CLIP tower's weights without ``visual.``) loads into that module.  Raises ``ValueError``
    when nothing fits.
    """
    state = foundation.weights_in(path)
    own = model.state_dict()
    for prefix in ("", *(f"{name}." for name, _ in model.named_children())):
        fitting = {prefix + name: value for name, value in state.items()
                   if prefix + name in own and own[prefix + name].shape == value.shape}
        if fitting:
            state = {prefix + name: value for name, value in state.items()}
            break
    if not fitting:
        raise ValueError(f"no weight in {path} fits {type(model).__name__} (names or shapes differ everywhere)")
    model.load_state_dict(fitting, strict=False)
    skipped = sorted(set(state) - set(fitting)) + sorted(set(own) - set(state))
    return skipped


def classifier_parameters(model):
    """The parameters of the layer that maps features to classes (for ``--freeze_backbone``)."""
    return list(find_classifier(model)[1].parameters())


# ---------------------------------------------------------------- sizes and the table

def check_input_size(model, height, width, model_id=None, config=None):
    """Raise ``ValueError`` if ``model`` cannot classify ``height x width`` images."""
    name = type(model).__name__
    if model_id is not None:
        entry = network(model_id, config)
        exact = entry.exact_size if isinstance(entry.exact_size, tuple) else (entry.exact_size,) * 2
        if entry.exact_size and (height, width) != exact:
            raise ValueError(f"{entry.name} takes {exact[0]}x{exact[1]} images only, not "
                             f"{height}x{width}; pass --height={exact[0]} --width={exact[1]}")
        if min(height, width) < entry.min_size:
            raise ValueError(f"{entry.name} cannot take {height}x{width} images (it needs at least "
                             f"{entry.min_size}x{entry.min_size}); use a larger --height/--width or a small-image "
                             "network (indices 35-46)")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=next(model.parameters()).device))
    except (RuntimeError, ValueError, AssertionError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{name} cannot take {height}x{width} images ({reason}); "
                         "use a larger --height/--width or a small-image network (indices 35-46)") from None
    finally:
        model.train(was_training)


def _parameter_count(entry):
    try:
        with torch.device("meta"):  # no memory, no initialisation
            model = entry.build(10)
    except NotImplementedError:  # RegNet computes its widths with tensors: build it for real
        model = entry.build(10)
    return sum(p.numel() for p in model.parameters())


def print_table(file=None):
    """Index, name, parameter count (10 classes), smallest input and ImageNet weights of every network."""
    print(f"{'index':>5}  {'name':<20} {'parameters':>12}  {'input':>9}  imagenet", file=file)
    for index, entry in MODELS.items():
        size = f"{entry.exact_size} only" if entry.exact_size else f">= {entry.min_size}"
        print(f"{index:>5}  {entry.name:<20} {_parameter_count(entry):>12,}  {size:>9}  "
              f"{'yes' if entry.imagenet else '-'}", file=file)


if __name__ == "__main__":
    print_table()
