"""SADE: self-supervised aggregation of diverse experts (Zhang et al., NeurIPS 2022, ``Vanint/SADE-AgnosticLT`` at
cba11b8): values and their sources in docs/recipes.md.

Training is their ``DiverseExpertLoss`` on three experts (``methods.experts``, RIDE's layout); the test-time
aggregation is their ``test_training_cifar.py``, offered to ``2_test.py`` as the evaluation "aggregated".
"""
import numpy as np
import torch
import torch.nn.functional as F

import stats
from augment import apply_policy, crop_padding
from loader import normalise
from methods.base import Method, one_classifier
from methods.experts import multi_expert
from utils import UserError, number, positive

EXPERTS = 3  # forward, uniform and backward; their loss indexes exactly three (loss.py:270-272)
PRIOR_EPSILON = 1e-9  # inside each log of a prior (loss.py:278, 283)
TTA_MOMENTUM = 0.9  # SGD, Nesterov (test_time_cifar100_ir100_sade.json:30-31)
TTA_STOP = 0.05  # stop after an epoch leaving a weight, rounded to 2 decimals, below this (test_training_cifar.py:319)
COSINE_EPSILON = 1e-6  # their CosineSimilarity(dim=1, eps=1e-6) (test_training_cifar.py:354)


class SADE(Method):
    """Three experts on a shared early network, each taught a different class prior by the logit adjustment of its
    cross entropy (their ``model/loss.py:244-286``, summed): the forward expert plain, as the long-tailed training
    set; the uniform expert on ``z + log(prior)`` (balanced softmax); the backward expert on ``z + log(prior) - tau *
    log(inverse prior)``, the inverse prior the training prior with its class ranks reversed.  The plain evaluation
    is the mean of their logits; ``evaluations`` adds the test-time aggregation (``aggregate_experts``)."""

    name = "sade"
    about = "self-supervised aggregation of diverse experts (Zhang et al., 2022): three experts for three class priors"
    flags = {
        "sade_tau": dict(type=number(float, 0), default=2.0,
                         help="SADE: the backward expert's tau, the power of the inverse prior it is taught"),
        "sade_tta_epochs": dict(type=number(int, 0), default=5,
                                help="SADE: epochs of the test-time aggregation over the test images (0: the plain "
                                     "mean of the experts)"),
        "sade_tta_lr": dict(type=positive(float), default=0.1, help="SADE: the test-time aggregation's SGD lr"),
        "sade_tta_batch": dict(type=positive(int), default=128, help="SADE: the test-time aggregation's batch size"),
        "sade_tta_weight_decay": dict(type=number(float, 0), default=5e-4,
                                      help="SADE: the test-time aggregation's weight decay on its weights (their "
                                           "CIFAR and ImageNet-LT value; iNaturalist 2e-4, Places-LT 4e-4)"),
    }
    own_loss = True
    experts = True

    @classmethod
    def check(cls, args, objective):
        super().check(args, objective)
        if args.maxnorm:
            one_classifier({"method": cls.name}, "--maxnorm bounds the class vectors of one classifier")

    @classmethod
    def network(cls, model, settings, num_classes):
        try:
            return multi_expert(model, EXPERTS)
        except ValueError as error:
            raise UserError(f"--method {cls.name}: {error}") from None

    def __init__(self, model, num_classes, class_counts, args, seed=0):
        super().__init__(model, num_classes, class_counts, args, seed)
        counts = np.asarray(class_counts, dtype=np.float64)
        prior = torch.tensor(counts / counts.sum()).float()  # float32, as theirs (loss.py:249-250)
        self.uniform_shift = torch.log(prior + PRIOR_EPSILON)
        self.backward_shift = self.uniform_shift - args.sade_tau * torch.log(inverse_prior(prior) + PRIOR_EPSILON)

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        expert_logits = model(images, experts=True)
        forward, uniform, backward = expert_logits.unbind(dim=1)
        total = (F.cross_entropy(forward, labels)
                 + F.cross_entropy(uniform + self.uniform_shift.to(uniform.device), labels)
                 + F.cross_entropy(backward + self.backward_shift.to(backward.device), labels))
        return total, expert_logits.mean(dim=1), labels

    @classmethod
    def evaluations(cls, settings):
        return {"aggregated": aggregate_experts}


def inverse_prior(prior):
    """Their ``inverse_prior`` (loss.py:255-261): the prior's values with the class ranks reversed, so the class
    with the k-th smallest prior gets the k-th largest value (not ``1 / prior``).  Tied classes take their ranks in
    class order (a stable sort): their ``torch.sort`` leaves the order of ties to the implementation, and a tie's
    classes can be given different values."""
    values, order = torch.sort(prior, stable=True)
    ranks = torch.argsort(order)
    return values[len(prior) - 1 - ranks]


def tta_view(height, width):
    """The two views of their test-time aggregation (test_training_cifar.py:116-125, 177-189, MoCo v2's): a random
    crop after zero padding (4 px at 32 px, ``crop_padding``), colour jitter (0.4, 0.4, 0.4, 0.1) with probability
    0.8, grey scale with probability 0.2, a Gaussian blur of sigma 0.1-2 with probability 0.2, a flip; per uint8
    image (``apply_policy``).  Their blur is PIL's, which has no kernel size: 13 px holds 3 sigma either side."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomCrop((height, width), padding=crop_padding(height, width)),
                       v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2),
                       v2.RandomApply([v2.GaussianBlur(13, sigma=(0.1, 2.0))], p=0.2), v2.RandomHorizontalFlip()])


@torch.no_grad()
def expert_logits_of(model, stream, runtime):
    """Each image's expert logits (N x experts x K, float32, on the CPU) and labels, in file order."""
    model.eval()
    logits, labels = [], []
    for images, batch_labels in stream:
        with runtime.autocast(evaluation=True):
            logits.append(model(images, experts=True).float().cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(logits), torch.cat(labels)


def aggregate_experts(model, stream, runtime, settings, class_prior=None):
    """SADE's test-time self-supervised aggregation (their ``test_training_cifar.py``): the split's logits as
    ``sum_k softmax(w)_k z_k`` over the experts' logits of the clean images, with ``w`` learned on the same,
    unlabelled images, and what was learned: ``(logits, {"aggregation_weights": softmax(w) as a list,
    "aggregation_epochs": the epochs run})``, the logits float32 numpy in file order.

    ``w`` starts at 1/3 each and follows SGD (``--sade_tta_lr``, momentum, Nesterov, ``--sade_tta_weight_decay``)
    on minus the mean cosine similarity of ``softmax(sum_k softmax(w)_k z_k)`` between two views (``tta_view``) of
    each image, the network frozen in evaluation mode; ``--sade_tta_epochs`` epochs of shuffled batches of
    ``--sade_tta_batch``, or fewer: the learning stops after an epoch that leaves a weight, rounded to 2 decimals,
    below 0.05.  The shuffled batches read the split's uint8 images from ``stream.raw_batches()`` (held in memory
    once more), in orders and views drawn from the run's seed, so an evaluation repeats; the clean images are
    ``stream``'s batches.

    Their skewed test sets are drawn from the test images by label; here ``class_prior`` (one probability per class,
    or None for the split as it is) weights each image's similarity by ``prior_y / share of y in the split``
    (``stats.prior_weights``), normalised within each batch, which learns ``w`` as on a test set drawn with that
    prior: the only use of the labels."""
    experts, labels = expert_logits_of(model, stream, runtime)
    images = torch.cat([batch.cpu() for batch in stream.raw_batches()])
    image_weights = torch.ones(len(labels)) if class_prior is None else torch.as_tensor(
        stats.prior_weights(labels.numpy(), class_prior), dtype=torch.float32)
    raw_weights = torch.full((EXPERTS,), 1 / EXPERTS, device=runtime.device, requires_grad=True)
    optimiser = torch.optim.SGD([raw_weights], lr=settings["sade_tta_lr"], momentum=TTA_MOMENTUM, nesterov=True,
                                weight_decay=settings["sade_tta_weight_decay"])
    view = tta_view(*images.shape[2:])
    epochs_run = 0
    with torch.random.fork_rng(devices=[]):  # the views and the order from the run's seed, the caller's untouched
        torch.manual_seed(settings.get("seed") or 0)
        for epochs_run in range(1, settings["sade_tta_epochs"] + 1):
            for batch in torch.randperm(len(images)).split(settings["sade_tta_batch"]):
                if image_weights[batch].sum() == 0:  # a batch of classes the prior leaves out: none in its test set
                    continue
                pair = torch.cat([apply_policy(images[batch], view) for _ in range(2)]).to(runtime.device)
                with torch.no_grad(), runtime.autocast(evaluation=True):
                    logits = model(normalise(pair, stream.mean, stream.std), experts=True).float()
                with torch.enable_grad():
                    combined = (torch.softmax(raw_weights, dim=0)[:, None] * logits).sum(dim=1)
                    first, second = torch.softmax(combined, dim=1).chunk(2)
                    similarity = F.cosine_similarity(first, second, dim=1, eps=COSINE_EPSILON)
                    weights = image_weights[batch].to(runtime.device)
                    loss = -(weights * similarity).sum() / weights.sum()
                    optimiser.zero_grad()
                    loss.backward()
                optimiser.step()
            if (torch.softmax(raw_weights.detach(), dim=0).cpu().numpy().round(2) < TTA_STOP).any():
                break
    shares = torch.softmax(raw_weights.detach(), dim=0).cpu()
    logits = (shares[:, None] * experts).sum(dim=1)
    return logits.numpy(), {"aggregation_weights": shares.tolist(), "aggregation_epochs": epochs_run}
