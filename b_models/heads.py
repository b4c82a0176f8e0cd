"""Classifier heads that replace a network's last linear layer."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class NormedLinear(nn.Module):
    """Cosine classifier of Cao et al. (2019): ``z_j = scale * cos(x, w_j)``.

    Both the features and each class's weight row are L2-normalised, so with the
    default ``scale`` of 1 every logit lies in [-1, 1]; LDAM then multiplies by its
    own ``s``.  ``scale`` is a buffer, so a checkpoint carries it.
    """

    def __init__(self, in_features, out_features, scale=1.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, features):
        cosine = F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))
        return cosine * self.scale.to(cosine.dtype)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={float(self.scale):g}"


def replace_classifier(model, num_classes, head):
    """Swap the last ``nn.Linear`` with ``num_classes`` outputs for ``head(in_features, num_classes)``."""
    linear = [name for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and module.out_features == num_classes]
    if not linear:
        raise ValueError(f"{type(model).__name__} has no linear classifier layer to replace "
                         "(its classifier is a convolution)")
    parent_name, _, attribute = linear[-1].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attribute)
    setattr(parent, attribute, head(old.in_features, num_classes))
    return model
