"""Balanced contrastive learning (Zhu et al., CVPR 2022, ``FlamieZhu/Balanced-Contrastive-Learning``): values and
their sources in docs/recipes.md."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import criterion
from augment import sim_view
from b_models.heads import FeatureTap, ProjectionHead, classifier_weight
from methods.base import Method, linear_classifier
from utils import number, positive


class BCL(Method):
    """Three views of each image go through the network in one batch: the first (the run's augmentation) is
    classified with the run's objective (the authors': LA, tau 1); the other two (``sim_view``, after SimCLR) are
    projected by an MLP head and, with one prototype per class (the classifier's class vectors through a second head
    of the same shape), give ``criterion.balanced_contrastive_loss``.  The loss is ``alpha * objective + beta *
    BalSCL``."""

    name = "bcl"
    about = "balanced contrastive learning (Zhu et al., 2022) beside the objective"
    flags = {
        "bcl_alpha": dict(type=number(float, 0), default=1.0, help="BCL: weight of the objective"),
        "bcl_beta": dict(type=number(float, 0), default=0.35, help="BCL: weight of the contrastive loss"),
        "bcl_temperature": dict(type=positive(float), default=0.07, help="BCL: temperature"),
        "projection_hidden": dict(type=positive(int), default=None,
                                  help="BCL: the projection heads' hidden size (default: the network's feature size, "
                                       "as their code's Linear(dim_in, dim_in))"),
        "projection_out": dict(type=positive(int), default=1024,
                               help="BCL: the projection heads' output size (their code's --feat_dim 1024; CIFAR "
                                    "re-implementations use 128)"),
    }
    views = ("train", sim_view, sim_view)

    def __init__(self, model, num_classes, class_counts, args, seed=0):
        super().__init__(model, num_classes, class_counts, args, seed)
        self.classifier = linear_classifier(model, self.name)
        feature_dim = self.classifier.in_features
        hidden, out = args.projection_hidden or feature_dim, args.projection_out  # their hidden layer: dim_in
        self.heads = nn.ModuleDict({"projection": ProjectionHead(feature_dim, out, hidden),
                                    "prototypes": ProjectionHead(feature_dim, out, hidden)})
        self.alpha, self.beta, self.temperature = args.bcl_alpha, args.bcl_beta, args.bcl_temperature

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        batch = len(labels)
        with FeatureTap(self.classifier) as tap:
            logits = model(torch.cat(images))
        embedded = F.normalize(self.heads["projection"](tap.features), dim=1)  # all three views, as their code
        contrastive = embedded[batch:].view(2, batch, -1).transpose(0, 1)
        prototypes = F.normalize(self.heads["prototypes"](classifier_weight(self.classifier)), dim=1)
        classified = logits[:batch]
        total = self.alpha * loss_fn(classified, labels) + self.beta * criterion.balanced_contrastive_loss(
            prototypes.to(contrastive.dtype), contrastive, labels, self.temperature)
        return total, classified, labels
