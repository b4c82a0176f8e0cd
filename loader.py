"""Data: find and check the splits of a dataset, decode images, feed batches.

The fast path decodes every image of a split once into a uint8 tensor
(N x 3 x H x W) kept in memory (on the GPU when training there) and augments
whole batches with tensor ops.  When a split does not fit ``cache_mb``,
DataLoader workers decode files on the fly; both paths share the batch order,
the augmentation and the normalisation, so they train the same model.
"""
import copy
import functools
import hashlib
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm import tqdm

from augment import apply_policy, augment_batch, crop_padding, cutout
from utils import UserError, contained, inside, save_atomic, write_json_atomic

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SAMPLERS = ("random", "class_balanced", "class_aware", "sqrt", "reversed")


@dataclass
class Split:
    """One split of a dataset: image paths and integer labels over ``classes``."""
    name: str
    root: Path
    classes: list
    paths: list
    labels: list

    def __len__(self):
        return len(self.paths)

    def class_counts(self):
        return np.bincount(self.labels, minlength=len(self.classes)).tolist()

    @functools.cached_property
    def fingerprint(self):
        """Changes whenever a file of the split is added, removed, renamed or modified (read once per scan)."""
        digest = hashlib.sha1()
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.relative_to(self.root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]


def _visible(path):
    return not path.name.startswith(".")


def is_image_file(path):
    return path.is_file() and _visible(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def list_datasets(data_dir):
    data_dir = Path(data_dir)
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and _visible(p)) if data_dir.is_dir() else []


def scan_split(split_dir, classes=None):
    """Read ``split_dir/<class>/<image>``; ``classes`` (from train) must match the folders exactly."""
    split_dir = Path(split_dir)
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and _visible(p))
    if not found:
        raise UserError(f"{split_dir} has no class folders; expected {split_dir}/<class>/<images>")
    if classes is not None and found != list(classes):
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        details = "; ".join(part for part in (
            f"missing class folder(s) {', '.join(missing)}" if missing else "",
            f"extra class folder(s) {', '.join(extra)}" if extra else "") if part)
        raise UserError(f"{split_dir} does not have the classes of train/: {details}")
    paths, labels = [], []
    for label, name in enumerate(found):
        images = sorted(p for p in (split_dir / name).rglob("*") if is_image_file(p) and _visible(p.parent))
        if not images:
            raise UserError(f"class folder {split_dir / name} has no images "
                            f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder")
        paths += images
        labels += [label] * len(images)
    return Split(split_dir.name, split_dir, found, paths, labels)


def load_splits(data_dir, dataset, splits=("train", "valid")):
    """Check and scan ``data_dir/dataset/<split>``; a split named ``test?`` is optional."""
    root = inside(data_dir, dataset, "--dataset", name=True)
    if not root.is_dir():
        available = list_datasets(data_dir)
        hint = f"available: {', '.join(available)}" if available else f"{data_dir}/ has no datasets (see data_split.py)"
        left = sorted(Path(data_dir).glob(f".{dataset}.old-*"))
        if left:  # a data_split.py --force killed between its two renames
            hint += f"; an interrupted rebuild left the previous {dataset} as {left[0]}: rename it back or rebuild it"
        raise UserError(f"dataset {dataset!r} not found in {data_dir}/; {hint}")
    result = {}
    classes = None
    for name in ("train",) + tuple(s for s in splits if s != "train"):
        optional = name.endswith("?")
        name = name.rstrip("?")
        if not (root / name).is_dir():
            if optional:
                continue
            raise UserError(f"dataset {dataset!r} has no {name}/ folder; expected {root}/{{train,valid,test}}/<class>/<images>")
        result[name] = scan_split(root / name, classes)
        classes = result[name].classes
    return result


# ---------------------------------------------------------------- decoding

def decode_image(path, height, width, hint="delete or replace it", sizing=None):
    """An RGB uint8 tensor 3 x height x width; grayscale, palette and alpha become RGB, and images with more than
    8 bits per channel (16-bit PNGs, 32-bit integer or floating-point TIFFs) are scaled to 8 bits, not clipped.

    ``sizing`` says how the image becomes height x width: None stretches the whole image (the small-image
    datasets' way); ``Sizing`` with ``random_crop`` draws a random-resized crop and a flip from the full image (the
    ImageNet-style training path), with ``resize_shorter`` resizes the shorter side and takes the centre (its
    evaluation), both with torchvision's own transforms.
    """
    if sizing is not None and (sizing.random_crop or sizing.resize_shorter):
        return sizing.apply(_decode_full(path, hint), height, width)
    try:
        with Image.open(path) as image:
            image = _rgb(image, path)
            if image.size != (width, height):
                image = image.resize((width, height), Image.BILINEAR)
            array = np.array(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot decode image {path} ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                        f"{hint}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _rgb(image, path):
    if image.mode in ("P", "PA", "LA"):
        image = image.convert("RGBA")
    if image.mode.startswith("I") or image.mode == "F":
        image = Image.fromarray(_to_8_bits(np.asarray(image), image.mode, path))
    return image.convert("RGB")


def _decode_full(path, hint):
    """The whole image as RGB uint8 (3 x H x W): JPEGs through torchvision's decoder (libjpeg-turbo, no PIL
    objects), the rest through Pillow as ``decode_image`` reads them."""
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        from torchvision.io import ImageReadMode, decode_jpeg, read_file
        try:
            return decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
        except (RuntimeError, ValueError):
            pass  # CMYK, progressive oddities, damage: Pillow decodes or names the problem
    try:
        with Image.open(path) as image:
            array = np.array(_rgb(image, path), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot decode image {path} ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                        f"{hint}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class Sizing:
    """How a full-size image becomes the network's input (see ``decode_image``)."""
    random_crop: bool = False  # training: RandomResizedCrop to the input size, then a random horizontal flip
    resize_shorter: Optional[int] = None  # evaluation: Resize(shorter side), then CenterCrop to the input size

    def apply(self, image, height, width):
        from torchvision.transforms import v2

        if self.random_crop:
            image = v2.RandomResizedCrop((height, width), antialias=True)(image)
            return v2.RandomHorizontalFlip()(image)
        image = v2.Resize(self.resize_shorter, antialias=True)(image)
        return v2.CenterCrop((height, width))(image)


def default_eval_resize(height, width):
    """The shorter side evaluation resizes to before its centre crop: 256 for 224 x 224 inputs, as torchvision's
    reference scripts do, scaled for other sizes."""
    return round(min(height, width) * 256 / 224)


def _to_8_bits(pixels, mode, path):
    """Pixels of a high-bit-depth single-channel image as uint8: 16-bit (and 16-bit values held in 32-bit
    integers, as Pillow opens 16-bit PNGs) divided by 257, wider integers by their range, floating point taken
    as 0..1 (values outside it are clipped, with a warning)."""
    pixels = pixels.astype(np.float64)
    if mode == "F":
        if pixels.size and (pixels.min() < 0 or pixels.max() > 1):
            warnings.warn(f"{path}: floating-point pixels outside 0..1 ({pixels.min():g} to {pixels.max():g}) "
                          "were clipped")
        pixels = np.clip(pixels, 0, 1) * 255
    elif mode.startswith("I;16") or pixels.max(initial=0) <= 65535:
        pixels = pixels / 257
    else:
        pixels = pixels / (2**32 - 1) * 255
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


BAD_IMAGE_HINT = "delete or replace it"


def try_decode(path, height, width, sizing=None):
    """``decode_image``, or one warning and None for a file that cannot be decoded."""
    return _decode_or_skip(path, height, width, skip_bad=True, sizing=sizing)


def normalise(images, mean, std):
    """uint8 images (N x 3 x H x W) -> float, ``(x / 255 - mean) / std`` per channel."""
    mean = torch.as_tensor(mean, device=images.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, device=images.device).view(1, 3, 1, 1)
    return images.to(torch.float32, copy=True).div_(255).sub_(mean).div_(std)  # the same values, one new tensor


def _decode_or_skip(path, height, width, skip_bad, hint=BAD_IMAGE_HINT, sizing=None):
    try:
        return decode_image(path, height, width, hint, sizing)
    except UserError as error:
        if not skip_bad:
            raise
        warnings.warn(f"skipping: {str(error).removesuffix('; ' + hint)}")
        return None


def decode_split(split, height, width, skip_bad=False, disk_cache=False, progress=True, hint=BAD_IMAGE_HINT,
                 sizing=None):
    """All images of ``split`` as one uint8 tensor, plus labels (bad files dropped with ``skip_bad``).

    With ``disk_cache`` the tensor is kept in ``<dataset>/.cache/``, named by the split's fingerprint and checked
    when read: a damaged file, or one whose labels or sampled images differ from the split's, is decoded again.
    """
    crop = f"-centre{sizing.resize_shorter}" if sizing is not None and sizing.resize_shorter else ""
    cache_file = Path(split.root).parent / ".cache" / f"{split.name}-{height}x{width}{crop}-{split.fingerprint}.pt"
    if disk_cache and cache_file.exists() and _cache_inside(cache_file):
        cached = _read_cache(cache_file, split, height, width, hint, sizing)
        if cached is not None:
            return cached
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        decoded = list(tqdm(pool.map(lambda p: _decode_or_skip(p, height, width, skip_bad, hint, sizing), split.paths),
                            total=len(split), desc=f"decoding {split.name}", unit="img", leave=False,
                            disable=None if progress else True, file=sys.stderr))
    keep = [i for i, image in enumerate(decoded) if image is not None]
    if not keep:
        raise UserError(f"no image of {split.root} could be decoded")
    images = torch.stack([decoded[i] for i in keep])
    labels = torch.tensor([split.labels[i] for i in keep], dtype=torch.long)
    if disk_cache:
        record = {"fingerprint": split.fingerprint, "kept": torch.tensor(keep), "images": images, "labels": labels}
        _try_write(lambda: save_atomic(record, cache_file), cache_file)
    return images, labels


CACHE_SPOT_CHECKS = 8  # images decoded again to confirm a disk cache holds this split's pixels


def _read_cache(path, split, height, width, hint, sizing=None):
    """``(images, labels)`` of a disk cache that belongs to ``split``, else None (with a warning)."""
    try:
        cached = torch.load(path, weights_only=True)
        kept, images, labels = cached["kept"].tolist(), cached["images"], cached["labels"]
        sound = (cached["fingerprint"] == split.fingerprint and images.dtype == torch.uint8
                 and tuple(images.shape[1:]) == (3, height, width) and len(images) == len(kept) == len(labels)
                 and labels.tolist() == [split.labels[i] for i in kept])
        for position in np.linspace(0, len(kept) - 1, min(CACHE_SPOT_CHECKS, len(kept))).astype(int) if sound else []:
            again = decode_image(split.paths[kept[position]], height, width, hint, sizing)
            sound = sound and torch.equal(images[position], again)
    except Exception as error:  # a truncated or foreign file: any of pickle's, zip's or torch's errors
        warnings.warn(f"ignoring the damaged cache {path} ({type(error).__name__}); decoding the images again")
        return None
    if not sound:
        warnings.warn(f"ignoring the cache {path}: it does not hold the images of {split.root}; decoding them again")
        return None
    return images, labels


def _cache_inside(path):
    """Whether a cache file of a dataset (``<data_dir>/<name>/.cache/...``) stays inside ``<data_dir>``: a link
    planted there that leads elsewhere is neither read nor written (one warning naming it)."""
    try:
        contained(path.parents[2], path, "the dataset's cache")
        return True
    except UserError as error:
        warnings.warn(f"{error}; its cache is not used")
        return False


def _try_write(write, path):
    if not _cache_inside(path):
        return
    try:
        path.parent.mkdir(exist_ok=True)
        write()
    except OSError as error:  # a WriteError too: the cache is an optimisation, never a reason to stop
        warnings.warn(f"could not write cache {path}: {getattr(error, 'strerror', None) or error}")


class ImageFiles(Dataset):
    """Decodes one file per item (the path for splits too large to keep decoded).  An undecodable image is
    returned as its ``UserError`` (not raised in the worker, whose traceback would wrap it) unless skipped."""

    def __init__(self, split, height, width, skip_bad=False, hint=BAD_IMAGE_HINT, sizing=None, seed=0):
        self.split, self.height, self.width, self.skip_bad, self.hint = split, height, width, skip_bad, hint
        self.sizing, self.seed = sizing, seed

    def __len__(self):
        return len(self.split)

    def __getitem__(self, key):
        """``key``: an index, or ``(index, epoch)`` for random crops, which are then drawn from (seed, epoch, index)
        alone: a persistent worker's own generator would carry on from where the run started, so a resumed run
        would crop differently."""
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        try:
            if self.sizing is not None and self.sizing.random_crop:
                with torch.random.fork_rng(devices=[]):  # the CPU generator only: torch.manual_seed would also
                    # queue seeds for every accelerator backend, with a stack trace each, per image
                    torch.default_generator.manual_seed(self.seed * 1_000_003 + epoch * 1_009 + index)
                    image = _decode_or_skip(self.split.paths[index], self.height, self.width, self.skip_bad,
                                            self.hint, self.sizing)
            else:
                image = _decode_or_skip(self.split.paths[index], self.height, self.width, self.skip_bad, self.hint,
                                        self.sizing)
        except UserError as error:
            return error
        return None if image is None else (image, self.split.labels[index])


def _collate_skipping_bad(items):
    """A batch of the decodable items, or the first undecodable item's error for the main process to raise."""
    errors = [item for item in items if isinstance(item, UserError)]
    if errors:
        return errors[0]
    return default_collate([item for item in items if item is not None])


def _batches(loader):
    """A DataLoader's batches, raising (in this process, as one line) the error of an undecodable image."""
    for batch in loader:
        if isinstance(batch, UserError):
            raise batch
        yield batch


# ---------------------------------------------------------------- batches

def channel_stats(uint8_batches):
    """Per-channel mean and std (in [0, 1] units) over batches of uint8 images."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for images in uint8_batches:
        values = images.to(torch.float64).div_(255).transpose(0, 1).reshape(3, -1)
        total += values.sum(1).cpu()
        squares += values.square().sum(1).cpu()
        pixels += values.shape[1]
    mean = total / pixels
    std = (squares / pixels - mean.square()).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


# Per-image weight n_k^-power of each sampler that re-weights classes: class k is then drawn in proportion to
# n_k^(1 - power).  class_aware (Kang et al.'s ClassAwareSampler) draws the same class balance in runs of a class.
SAMPLER_POWERS = {"class_balanced": 1.0, "sqrt": 0.5, "reversed": 2.0}
CLASS_AWARE_RUN = 4  # images taken from a class per visit (num_samples_cls in Kang et al.'s configs)


class EpochBatches:
    """Batches of sample indices for one epoch and one process.

    The order depends only on (seed, epoch), so a resumed run draws the same
    batches; ``sampler`` re-weights classes: each image is drawn (with replacement,
    as many draws as images) with weight ``n_k^-p``, so class k comes in proportion
    to ``n_k^(1-p)``: ``class_balanced`` p = 1 (every class alike), ``sqrt`` p = 1/2,
    ``reversed`` p = 2 (1 / n_k, BBN's reversed sampler), or a number p (CMO's
    minority sampler, ``1 / n_k^alpha`` per image).  ``class_aware`` is Kang et
    al.'s ClassAwareSampler: classes visited in a shuffled cycle, 4 images of a
    class per visit from its own shuffled cycle, each batch then shuffled.  With
    several processes each takes every ``world_size``-th index; training pads the
    order so every process runs the same number of steps, evaluation does not.
    """

    def __init__(self, labels, batch_size, train, sampler="random", seed=0, rank=0, world_size=1):
        self.labels = torch.as_tensor(labels)
        self.batch_size, self.train, self.sampler = batch_size, train, sampler
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.with_epoch = False

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _order(self):
        n = len(self.labels)
        if not self.train:
            return torch.arange(n)[self.rank::self.world_size]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.sampler == "random":
            order = torch.randperm(n, generator=generator)
        elif self.sampler == "class_aware":
            order = class_aware_order(self.labels, n, self.batch_size, generator)
        else:
            power = SAMPLER_POWERS.get(self.sampler, self.sampler)
            counts = torch.bincount(self.labels).double()
            order = torch.multinomial(counts.pow(-float(power))[self.labels], n, replacement=True, generator=generator)
        padded = -(-n // self.world_size) * self.world_size
        order = torch.cat([order, order[: padded - n]])
        return order[self.rank::self.world_size]

    def _num_samples(self):
        n = len(self.labels)
        if self.train:
            return -(-n // self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __len__(self):
        full, rest = divmod(self._num_samples(), self.batch_size)
        # A last training batch of one image would break batch norm: drop it.
        return full + (rest > 1 or (rest == 1 and (not self.train or full == 0)))

    def batch_tensors(self):
        batches = list(self._order().split(self.batch_size))
        return batches[: len(self)]

    def __iter__(self):
        if self.with_epoch:  # (index, epoch): for per-image random draws in DataLoader workers
            return ([(index, self.epoch) for index in batch.tolist()] for batch in self.batch_tensors())
        return (batch.tolist() for batch in self.batch_tensors())


def class_aware_order(labels, draws, batch_size, generator, run=CLASS_AWARE_RUN):
    """``draws`` indices as Kang et al.'s ClassAwareSampler gives them: the classes in a shuffled cycle (shuffled
    again at each new cycle), ``run`` images of the visited class from that class's own shuffled cycle, and then
    every batch of ``batch_size`` shuffled, so a batch does not hold its images in runs of one class."""
    labels = torch.as_tensor(labels)
    members = [m.tolist() for m in (torch.nonzero(labels == k).flatten() for k in range(int(labels.max()) + 1)) if len(m)]

    def shuffled(items):
        return [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]

    cycles, positions, visits, picked = [shuffled(m) for m in members], [0] * len(members), [], []
    while len(picked) < draws:
        if not visits:
            visits = torch.randperm(len(members), generator=generator).tolist()
        k = visits.pop()
        for _ in range(run):
            if positions[k] == len(cycles[k]):  # the class's cycle ends: a new shuffled cycle of its images
                cycles[k], positions[k] = shuffled(members[k]), 0
            picked.append(cycles[k][positions[k]])
            positions[k] += 1
    order = torch.tensor(picked[:draws])
    return torch.cat([chunk[torch.randperm(len(chunk), generator=generator)] for chunk in order.split(batch_size)])


class BatchStream:
    """Normalised (and, for training, augmented) batches of one split on ``device``."""

    def __init__(self, split, height, width, batch_size, *, train, device, augment="crop_flip", sampler="random",
                 seed=0, cache_mb=4096, workers=None, skip_bad_images=False, disk_cache=False,
                 rank=0, world_size=1, channels_last=False, progress=True, bad_image_hint=BAD_IMAGE_HINT, cutout=0,
                 eval_resize=None, flip=None):
        self.split, self.device, self.train, self.seed, self.rank = split, torch.device(device), train, seed, rank
        self.reading = dict(split=split, height=height, width=width, batch_size=batch_size, device=device, seed=seed,
                            cache_mb=cache_mb, workers=workers, skip_bad_images=skip_bad_images, disk_cache=disk_cache,
                            channels_last=channels_last, progress=progress, bad_image_hint=bad_image_hint,
                            eval_resize=eval_resize)  # how unaugmented() reads the same split
        # rrc_flip crops and flips each full-size image as it is decoded (in the workers); the others resize the
        # whole image, then crop and flip batches here.
        full_size = train and augment == "rrc_flip"
        sizing = Sizing(random_crop=True) if full_size else None if train or not eval_resize else Sizing(
            resize_shorter=eval_resize)
        self.padding = crop_padding(height, width) if train and augment not in ("none", "rrc_flip") else 0
        flip = augment == "crop_flip" if flip is None else flip
        self.flip = train and augment != "rrc_flip" and flip  # rrc_flip flips as it crops, in the workers
        # A policy (--augment autoaugment, ...) comes after the crop and flip, as in PaCo; set_policy sets it.
        self.policy = None
        self.views = ("train",)  # set_views: several augmented views of each image (two-view methods)
        self.height, self.width = height, width
        self.cutout = cutout if train else 0
        self.channels_last = channels_last
        self.cached = len(split) * 3 * height * width <= cache_mb * 2**20 and not full_size
        if self.cached:
            images, labels = decode_split(split, height, width, skip_bad_images, disk_cache, progress, bad_image_hint,
                                          sizing)
            on_device = self.device.type != "cpu" and _fits_on_device(images, self.device)
            self.images = images.to(self.device) if on_device else images
            self.labels = labels.to(self.images.device)
            self.batches = EpochBatches(labels, batch_size, train, sampler, seed, rank, world_size)
        else:
            self.batches = EpochBatches(split.labels, batch_size, train, sampler, seed, rank, world_size)
            workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if workers is None else workers
            self.batches.with_epoch = full_size
            self.loader = DataLoader(ImageFiles(split, height, width, skip_bad_images, bad_image_hint, sizing, seed + rank),
                                     batch_sampler=self.batches,
                                     num_workers=workers, collate_fn=_collate_skipping_bad,
                                     pin_memory=self.device.type == "cuda", persistent_workers=workers > 0)
        self.class_counts = torch.bincount(torch.as_tensor(self.batches.labels), minlength=len(split.classes)).tolist()
        self.generator = torch.Generator(device=self.device)
        self.mean = self.std = None

    def __len__(self):
        return len(self.batches)

    def with_sampler(self, sampler, seed):
        """A second stream over the same decoded images (or files) drawing its batches with another sampler and
        seed: CMO's minority batches."""
        other = copy.copy(self)
        other.batches = EpochBatches(self.batches.labels, self.batches.batch_size, True, sampler, seed, self.rank,
                                     self.batches.world_size)
        other.batches.with_epoch = self.batches.with_epoch
        other.seed, other.generator = seed, torch.Generator(device=self.device)
        if not self.cached:
            other.loader = DataLoader(self.loader.dataset, batch_sampler=other.batches,
                                      num_workers=self.loader.num_workers, collate_fn=_collate_skipping_bad,
                                      pin_memory=self.device.type == "cuda",
                                      persistent_workers=self.loader.num_workers > 0)
        return other

    @property
    def num_samples(self):
        return len(self.batches.labels)

    def set_epoch(self, epoch):
        self.batches.set_epoch(epoch)
        self.generator.manual_seed(self.seed * 1_000_003 + epoch * 7919 + self.rank)  # own crops per process

    def set_views(self, views):
        """Yield several views of each image: ``"train"`` (this stream's augmentation; none in an evaluation
        stream) or a factory ``(height, width) -> transform`` of one uint8 image (a method's own view, e.g.
        ``augment.sim_view``); with more than one, a batch's images are a list of views."""
        self.views = tuple(view if view == "train" else view(self.height, self.width) for view in views)

    def set_policy(self, transform):
        """A per-image transform of uint8 images (``augment.policy``) applied after the crop and flip."""
        self.policy = transform if self.train else None

    def unaugmented(self):
        """The same split as an evaluation reads it, whole in every process: each image once in file order, resized
        and centre-cropped to the input size, normalised as this stream is."""
        stream = BatchStream(**self.reading, train=False)
        stream.set_normalization(self.mean.flatten().tolist(), self.std.flatten().tolist())
        return stream

    def set_normalization(self, mean, std):
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    def raw_batches(self):
        """Every image of the split once, as uint8 batches without augmentation (for statistics)."""
        if self.cached:
            yield from self.images.split(1024)
        else:
            loader = DataLoader(self.loader.dataset, batch_size=256, num_workers=self.loader.num_workers,
                                collate_fn=_collate_skipping_bad)
            for images, _ in _batches(loader):
                yield images

    def __iter__(self):
        if self.cached:
            # One host-to-device copy of the epoch's order, not one (synchronising) copy per batch.
            indices = self.batches.batch_tensors()
            order = torch.cat(indices).to(self.images.device, non_blocking=True) if indices else torch.empty(0)
            batches = ((self.images[index], self.labels[index]) for index in order.split([len(i) for i in indices]))
        else:
            batches = _batches(self.loader)
        for images, labels in batches:
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            views = [self._view(images, kind) for kind in self.views]
            yield (views[0] if len(views) == 1 else views), labels

    def _view(self, images, kind):
        """One augmented, normalised view of a uint8 batch: ``kind`` is "train" or a method's transform."""
        if kind != "train":
            images = apply_policy(images, kind)
        else:
            if self.padding or self.flip:
                images = augment_batch(images, self.padding, self.flip, self.generator)
            if self.policy is not None:
                images = apply_policy(images, self.policy)
        images = normalise(images, self.mean, self.std)
        if self.cutout and kind == "train":
            images = cutout(images, self.cutout, self.generator)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


def _fits_on_device(images, device):
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() < 0.25 * free


def train_stats(stream, height, width):
    """Mean/std of the training split, cached in ``<dataset>/.cache/`` and recomputed when files change."""
    split = stream.split
    cache_file = Path(split.root).parent / ".cache" / f"stats-{height}x{width}.json"
    fingerprint = split.fingerprint
    try:
        cached = json.loads(cache_file.read_text())
        if cached.get("fingerprint") == fingerprint:
            return cached["mean"], cached["std"]
    except (OSError, ValueError, KeyError):
        pass
    mean, std = channel_stats(stream.raw_batches())
    _try_write(lambda: write_json_atomic({"fingerprint": fingerprint, "mean": mean, "std": std}, cache_file), cache_file)
    return mean, std
