"""Classifier heads, and the one place that finds and swaps a network's classifier layer."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class NormedLinear(nn.Module):
    """Cosine classifier of Cao et al. (2019): ``z_j = scale * cos(x, w_j)``.

    Both the features and each class's weight row are L2-normalised, so with the
    default ``scale`` of 1 every logit lies in [-1, 1]; LDAM then multiplies by its
    own ``s``.  ``scale`` is a buffer, so a checkpoint carries it.  The class vectors
    start uniform in [-1, 1] and rescaled to unit norm, as in Cao et al.'s code: the
    forward pass does not depend on their norm, but the step size does (a gradient
    step of a given size turns a long vector less), so the start sets the head's
    effective learning rate.
    """

    def __init__(self, in_features, out_features, scale=1.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.weight.uniform_(-1, 1)
            self.weight.div_(self.weight.norm(dim=1, keepdim=True))

    def forward(self, features):
        cosine = F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))
        return cosine * self.scale.to(cosine.dtype)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={float(self.scale):g}"


class ClassScales(nn.Module):
    """Learnable weight scaling (LWS, Kang et al., 2020): the logits of a classifier times one learned scale per
    class, ``z_j = f_j * (w_j . x + b_j)``, the scales starting at 1."""

    def __init__(self, classifier, num_classes):
        super().__init__()
        self.classifier = classifier
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, features):
        return self.classifier(features) * self.scales.to(features.dtype)


def add_class_scales(model, num_classes):
    """Wrap the linear classifier of ``model`` in ``ClassScales``; returns the wrapper."""
    if not isinstance(find_classifier(model, num_classes)[1], (nn.Linear, NormedLinear)):
        raise ValueError(f"{type(model).__name__} classifies with a convolution; --lws scales a linear classifier")
    return replace_classifier(model, lambda old: ClassScales(old, num_classes), num_classes)


def _outputs(module):
    """The number of classes a classifier-shaped layer maps to, or None for any other layer."""
    if isinstance(module, (nn.Linear, NormedLinear)):
        return module.out_features
    if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1):  # SqueezeNet classifies with a 1x1 conv
        return module.out_channels
    return None


def find_classifier(model, num_outputs=None):
    """``(name, layer)`` of the last linear, cosine or 1x1-convolution layer (with ``num_outputs`` outputs, when
    given): the layer that maps features to classes (inside ``ClassScales`` when there is one).  ``ValueError``
    when there is none, or one per expert (a module marked ``several_classifiers``, as ``methods.experts.MultiExpert``:
    its last head alone is not its classifier)."""
    if any(getattr(module, "several_classifiers", False) for module in model.modules()):
        raise ValueError("a multi-expert network has a classifier per expert and is evaluated by the mean of their "
                         "logits: it has no one classifier layer")
    found = [(name, module) for name, module in model.named_modules()
             if _outputs(module) is not None and num_outputs in (None, _outputs(module))]
    if not found:
        raise ValueError(f"{type(model).__name__} has no classifier layer"
                         f"{f' with {num_outputs} outputs' if num_outputs else ''}")
    return found[-1]


def replace_classifier(model, new_layer, num_outputs=None):
    """Swap the classifier (see ``find_classifier``) for ``new_layer(old_layer)``; returns the new layer."""
    name, old = find_classifier(model, num_outputs)
    parent_name, _, attribute = name.rpartition(".")
    new = new_layer(old)
    setattr(model.get_submodule(parent_name) if parent_name else model, attribute, new)
    return new


def cosine_head(num_classes, scale):
    """``replace_classifier``'s argument for a ``NormedLinear`` head over a linear classifier's features."""
    return lambda old: NormedLinear(old.in_features, num_classes, scale)


def fresh_classifier(num_classes):
    """``replace_classifier``'s argument for a new, randomly initialised layer of the same kind."""
    def build(old):
        if isinstance(old, nn.Conv2d):
            return nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride)
        return nn.Linear(old.in_features, num_classes)
    return build


def class_weight_norms(layer):
    """The norm of each class's weight vector of a linear or 1x1-convolution classifier."""
    if isinstance(layer, NormedLinear):
        raise ValueError("a cosine classifier's class vectors all have unit norm by construction")
    return layer.weight.detach().flatten(1).norm(dim=1)


def max_norm_radius(layer, threshold, relative=True):
    """MaxNorm's radius for ``layer``: ``threshold`` itself, or, ``relative``, Alshammari et al.'s per-layer
    threshold ``min_k ||w_k|| + threshold * (max_k ||w_k|| - min_k ||w_k||)`` over the norms the layer's class
    vectors have now (their ``setPerLayerThresh``, called on the first stage's classifier)."""
    if not relative:
        return float(threshold)
    norms = class_weight_norms(layer)
    return float(norms.min() + threshold * (norms.max() - norms.min()))


@torch.no_grad()
def project_to_max_norm(layer, max_norm):
    """MaxNorm (Alshammari et al., 2022): each class's weight vector scaled onto the ball of radius ``max_norm``
    when it lies outside (the bias is never projected, as in their code)."""
    layer.weight.copy_(torch.renorm(layer.weight, 2, 0, max_norm))


class ProjectionHead(nn.Module):
    """A projection head trained beside the network and dropped for evaluation: ``Linear(d, hidden) - BN - ReLU -
    Linear(hidden, out)`` (BCL's and SimCLR's MLP), or one ``Linear(d, out)`` with ``hidden`` None (GLMC's)."""

    def __init__(self, in_features, out_features, hidden=None):
        super().__init__()
        if hidden is None:
            self.layers = nn.Linear(in_features, out_features)
        else:
            self.layers = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, out_features))

    def forward(self, features):
        return self.layers(features)


class FeatureTap:
    """The input of a network's classifier layer (its features) at the last forward pass: a forward pre-hook, so a
    method can use the features without the network returning them (``with FeatureTap(layer) as tap: ...``)."""

    def __init__(self, layer):
        self.layer, self.features, self.handle = layer, None, None

    def _keep(self, module, inputs):
        self.features = inputs[0]

    def __enter__(self):
        self.handle = self.layer.register_forward_pre_hook(self._keep)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return False


def classifier_weight(layer):
    """The class vectors (C x d) of a classifier layer, LWS-wrapped or not (BCL's prototypes start from them)."""
    layer = layer.classifier if isinstance(layer, ClassScales) else layer
    return layer.weight.flatten(1)
