"""Training-time changes to a batch: crop and flip, the AutoAugment family, Cutout, and mixing two images and their
labels (mixup, CutMix, Remix, CMO).

Every function draws from a generator it is given (or, for torchvision's policies, from torch's global generator,
which the training loop seeds per epoch), so a resumed run draws what an uninterrupted one would.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

POLICIES = ("autoaugment", "randaugment", "trivialaugment")
AUGMENTATIONS = ("crop_flip", "crop", "none", "rrc_flip") + POLICIES
MIXES = ("mixup", "cutmix", "remix", "cmo")


# ---------------------------------------------------------------- one image at a time

def crop_padding(height, width):
    """The original's 4-pixel padding for 32 px images, scaled to the image size."""
    return max(1, round(4 * min(height, width) / 32))


def augment_batch(images, padding, flip, generator):
    """Random crop after zero padding (and a horizontal flip with probability 1/2), per image.

    Draws the same distribution as torchvision's ``RandomCrop(padding=...)`` and
    ``RandomHorizontalFlip()``, for a whole uint8 batch at once.
    """
    n, _, height, width = images.shape
    device = images.device
    rows = torch.arange(height, device=device).expand(n, height)
    cols = torch.arange(width, device=device).expand(n, width)
    if padding:
        images = F.pad(images, (padding,) * 4)
        rows = rows + torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=device)
        cols = cols + torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=device)
    if flip:
        flipped = torch.rand(n, 1, generator=generator, device=device) < 0.5
        cols = torch.where(flipped, cols.flip(1), cols)
    batch_index = torch.arange(n, device=device)[:, None, None]
    # Advanced indexing around the channel slice gives N x H x W x C.
    return images[batch_index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def policy(name, fill=None, ops=2, magnitude=9):
    """torchvision's ``AutoAugment`` (CIFAR-10 policy), ``RandAugment`` (``ops`` operations at ``magnitude`` of 31
    levels) or ``TrivialAugmentWide``, or None.  ``fill`` (an RGB triple of 0-255) paints what a rotation, shear or
    translation uncovers: torchvision's default is black; the long-tail references fill with a mean colour (PaCo and
    BCL: ImageNet's mean pixel for RandAugment; PaCo's CIFAR-10 AutoAugment: grey 128), and 1_train.py passes the
    training split's mean colour."""
    if name not in POLICIES:
        return None
    from torchvision.transforms import v2

    fill = None if fill is None else [int(round(value)) for value in fill]
    build = {"autoaugment": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10, fill=fill),
             "randaugment": lambda: v2.RandAugment(num_ops=ops, magnitude=magnitude, fill=fill),
             "trivialaugment": lambda: v2.TrivialAugmentWide(fill=fill)}
    return build[name]()


def sim_view(height, width):
    """The contrastive views of BCL's code ("sim", after SimCLR): a random-resized crop (scale 0.08-1) to the image
    size, a flip, colour jitter (0.4, 0.4, 0.4, 0.1) with probability 0.8 and grey scale with probability 0.2, per
    uint8 image (``apply_policy``)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop((height, width), antialias=True), v2.RandomHorizontalFlip(),
                       v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2)])


def apply_policy(images, transform):
    """``transform`` on each uint8 image of a batch separately: torchvision draws one set of operations per call,
    so a batched call would give every image the same ones."""
    return torch.stack([transform(image) for image in images])


def cutout(images, size, generator):
    """Cutout (DeVries & Taylor, 2017), as their code cuts it: per image, rows ``y - size//2`` to ``y + size//2``
    (and the same columns) around a uniformly drawn centre ``(y, x)``, cut where they cross the border, set to 0,
    the mean colour of normalised images (their code, too, cuts after normalising).  The square's side is
    ``2 * (size // 2)``: an odd ``size`` loses one pixel, as there."""
    n, _, height, width = images.shape
    device = images.device
    half = size // 2
    top = torch.randint(0, height, (n, 1, 1), generator=generator, device=device) - half
    left = torch.randint(0, width, (n, 1, 1), generator=generator, device=device) - half
    rows = torch.arange(height, device=device)[None, :, None]
    cols = torch.arange(width, device=device)[None, None, :]
    inside = (rows >= top) & (rows < top + 2 * half) & (cols >= left) & (cols < left + 2 * half)
    return images.masked_fill(inside[:, None], 0)


# ---------------------------------------------------------------- two images at a time

@dataclass
class Mixed:
    """A mixed batch: the loss is ``lam * L(targets_a) + (1 - lam) * L(targets_b)``, per image."""
    images: torch.Tensor
    targets_a: torch.Tensor
    targets_b: torch.Tensor
    lam: torch.Tensor  # per image: the share of targets_a in the label


def cutmix_box(height, width, lam, rng):
    """CutMix's box as Yun et al.'s code (and CMO's copy of it) cuts it: sides ``int(H * sqrt(1 - lam))`` and
    ``int(W * sqrt(1 - lam))``, rows ``cy - cut_h//2`` to ``cy + cut_h//2`` around a uniform centre, cut at the
    border (an odd side loses one pixel, as there): ``(top, bottom, left, right)``.  The label share is then the
    area left, ``paste``'s second result."""
    half_h, half_w = int(height * np.sqrt(1 - lam)) // 2, int(width * np.sqrt(1 - lam)) // 2
    centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([centre_y - half_h, centre_y + half_h], 0, height)
    left, right = np.clip([centre_x - half_w, centre_x + half_w], 0, width)
    return int(top), int(bottom), int(left), int(right)


def paste(images, source, box):
    """``images`` with ``box`` taken from ``source``, and the share of each image that is still its own."""
    top, bottom, left, right = box
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = source[:, :, top:bottom, left:right]
    return mixed, 1.0 - (bottom - top) * (right - left) / (images.shape[2] * images.shape[3])


def remix_lambda(lam, counts_a, counts_b, kappa=3.0, tau=0.5):
    """Remix's label share of ``targets_a`` (Chou et al., 2020): the images mix by ``lam``, but when the class of
    ``a`` has at least ``kappa`` times the images of ``b``'s and ``lam < tau``, the label is all ``b``'s (0); in the
    mirror case (``b``'s class ``kappa`` times larger and ``1 - lam < tau``) all ``a``'s (1); else ``lam``."""
    lam = torch.as_tensor(lam, dtype=torch.float32).expand(len(counts_a)).clone()
    ratio = counts_a.float() / counts_b.float()
    label = lam.clone()
    label[(ratio >= kappa) & (lam < tau)] = 0.0
    label[(ratio <= 1 / kappa) & (1 - lam < tau)] = 1.0
    return label


@dataclass(frozen=True)
class MixRecipe:
    """What a mixing method's official code does besides mixing: the share of batches it mixes and the epochs at
    the start and the end it leaves unmixed (docs/recipes.md has the sources)."""
    probability: float
    off_first: int = 0
    off_last: int = 0


# mixup (Zhang et al.'s mixup-cifar10): every batch.  CutMix (Yun et al.'s CIFAR command): half the batches.
# Remix (no official code; the paper): every batch.  CMO (Park et al.'s cifar_train.py): half the batches, and only
# in epochs start < e < E - end with --start_data_aug 3, --end_data_aug 3, so not in the first 4 or the last 3.
MIX_RECIPES = {"mixup": MixRecipe(1.0), "cutmix": MixRecipe(0.5), "remix": MixRecipe(1.0), "cmo": MixRecipe(0.5, 4, 3)}


class Mixer:
    """Mixes training batches: ``--mix``, ``--mix_alpha`` (lam ~ Beta(alpha, alpha)), ``--mix_prob`` (share of
    batches mixed), ``off_first`` / ``off_last``: the epochs left unmixed (``scaled_pauses`` of the flags), Remix's ``kappa`` and ``tau``.
    CMO pastes images from a second stream whose sampler weights each image by ``1 / n_k^alpha`` (``--cmo_alpha``;
    at 1 every class is drawn alike).  Seeded per epoch."""

    def __init__(self, kind, class_counts, alpha=1.0, probability=1.0, kappa=3.0, tau=0.5, seed=0, epochs=None,
                 off_first=0, off_last=0):
        self.kind, self.alpha, self.probability, self.kappa, self.tau, self.seed = kind, alpha, probability, kappa, tau, seed
        self.epochs, self.off_first, self.off_last = epochs, off_first, off_last
        self.class_counts = torch.as_tensor(class_counts)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.rng = np.random.default_rng([self.seed, epoch, 5])
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 31 + 17)
        self.active = mixing_epoch(epoch, self.epochs, self.off_first, self.off_last)

    def __call__(self, images, labels, minority=None):
        """A ``Mixed`` batch, or None for a batch left as it is (``--mix_prob``, or an epoch without mixing)."""
        if not self.active or self.rng.random() >= self.probability:
            return None
        lam = float(self.rng.beta(self.alpha, self.alpha))
        if self.kind == "cmo":
            source_images, source_labels = minority
            count = min(len(images), len(source_images))
            images, labels = images[:count], labels[:count]
            mixed, lam = paste(images, source_images[:count], cutmix_box(*images.shape[2:], lam, self.rng))
            return Mixed(mixed, labels, source_labels[:count], torch.full((count,), lam, device=labels.device))
        order = torch.randperm(len(images), generator=self.generator).to(images.device)
        other = labels[order]
        if self.kind == "cutmix":
            mixed, lam = paste(images, images[order], cutmix_box(*images.shape[2:], lam, self.rng))
            return Mixed(mixed, labels, other, torch.full((len(labels),), lam, device=labels.device))
        mixed = lam * images + (1 - lam) * images[order]
        share = torch.full((len(labels),), lam)
        if self.kind == "remix":
            counts = self.class_counts
            share = remix_lambda(lam, counts[labels.cpu()], counts[other.cpu()], self.kappa, self.tau)
        return Mixed(mixed, labels, other, share.to(labels.device))


def scaled_pauses(off_first, off_last, epochs, reference=None):
    """The epochs without mixing at the start and the end of a run of ``epochs`` (``--mix_off_first``,
    ``--mix_off_last``): as given, or, with ``reference`` (``--mix_off_reference``), counted in a schedule of
    ``reference`` epochs and scaled to this one, rounded half up (CMO's 4 and 3 of 200 epochs are 0 and 0 of 15,
    1 and 1 of 60), so mixing covers the same share of the schedule and the same lr stages as in the recipe."""
    if reference is None:
        return off_first, off_last
    return tuple(int(math.floor(count * epochs / reference + 0.5)) for count in (off_first, off_last))


def mixing_epoch(epoch, epochs, off_first=0, off_last=0):
    """Whether epoch ``epoch`` (0-based) of ``epochs`` mixes: not in the first ``off_first`` nor the last
    ``off_last`` epochs (CMO's ``start_data_aug < epoch < epochs - end_data_aug`` is off_first = start + 1)."""
    return epoch >= off_first and (epochs is None or epoch < epochs - off_last)
