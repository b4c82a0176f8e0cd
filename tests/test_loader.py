"""Dataset scanning, decoding, augmentation, batch order and the two data paths."""
import json
import os
import time

import numpy as np
import pytest
import torch

import augment
import loader
from runtime import Runtime
from conftest import CLASSES, make_dataset, script
from utils import UserError


def test_scan_skips_hidden_and_non_image_files(tmp_path):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    assert split.classes == list(CLASSES)
    assert split.class_counts() == [12, 8, 4]
    assert all(p.suffix in {".png", ".jpg", ".gif"} for p in split.paths)


def test_every_mode_decodes_to_rgb(tmp_path):
    root = make_dataset(tmp_path)
    for name in ("1_gray.png", "2_rgba.png", "3_palette.gif", "0.png", "5.jpg"):
        image = loader.decode_image(root / "train" / "cat" / name, 16, 16)
        assert image.shape == (3, 16, 16) and image.dtype == torch.uint8
    gray = loader.decode_image(root / "train" / "cat" / "1_gray.png", 16, 16)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert loader.decode_image(root / "train" / "cat" / "0.png", 8, 12).shape == (3, 8, 12)  # resized


def test_undecodable_image_is_named(tmp_path):
    root = make_dataset(tmp_path)
    bad = root / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    split = loader.scan_split(root / "train")
    with pytest.raises(UserError, match=r"cannot decode image .*broken.jpg.*\); delete or replace it$"):
        loader.decode_split(split, 16, 16, progress=False)  # no flag to suggest: 2_test.py has none
    with pytest.raises(UserError, match="cannot decode image .*broken.jpg.*, or pass --skip_bad_images$"):
        loader.decode_split(split, 16, 16, progress=False, hint="delete or replace it, or pass --skip_bad_images")
    with pytest.warns(UserWarning, match="broken.jpg"):
        images, labels = loader.decode_split(split, 16, 16, skip_bad=True, progress=False)
    assert len(images) == len(split) - 1 and labels.tolist().count(1) == 8


def test_split_checks(tmp_path):
    root = make_dataset(tmp_path)
    (root / "valid" / "fox").rename(root / "valid" / "wolf")
    with pytest.raises(UserError, match="missing class folder\\(s\\) fox; extra class folder\\(s\\) wolf"):
        loader.load_splits(tmp_path, "tiny")
    with pytest.raises(UserError, match="'nope' not found.*available: tiny"):
        loader.load_splits(tmp_path, "nope")


def test_empty_class_folder_is_named(tmp_path):
    root = make_dataset(tmp_path)
    (root / "train" / "empty").mkdir()
    (root / "train" / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="class folder .*empty has no images"):
        loader.scan_split(root / "train")


def test_optional_test_split(tmp_path):
    make_dataset(tmp_path, splits=("train", "valid"))
    assert set(loader.load_splits(tmp_path, "tiny", ("valid", "test?"))) == {"train", "valid"}


# ---------------------------------------------------------------- augmentation

def test_augment_is_a_padded_window_or_its_mirror():
    images = torch.arange(2 * 3 * 6 * 5, dtype=torch.int64).remainder(250).add(1).to(torch.uint8).view(2, 3, 6, 5)
    padding = 2
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    generator = torch.Generator().manual_seed(0)
    offsets, flips = set(), 0
    for _ in range(300):
        out = augment.augment_batch(images, padding, True, generator)
        assert out.shape == images.shape and out.dtype == torch.uint8
        for i in range(2):
            match = [(dy, dx, f) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1) for f in (0, 1)
                     if torch.equal(out[i], _window(padded[i], dy, dx, 6, 5, f))]
            assert match, "output is not a crop of the padded image"
            offsets.add(match[0][:2])
            flips += match[0][2]
    assert len(offsets) == (2 * padding + 1) ** 2  # every offset is drawn
    assert 0.4 < flips / 600 < 0.6


def _window(padded, dy, dx, h, w, flip):
    window = padded[:, dy:dy + h, dx:dx + w]
    return window.flip(-1) if flip else window


def test_no_augmentation_without_padding_and_flip():
    images = torch.randint(0, 255, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(augment.augment_batch(images, 0, False, torch.Generator()), images)


def test_crop_only_never_flips():
    images = torch.randint(0, 255, (64, 3, 8, 8), dtype=torch.uint8)
    out = augment.augment_batch(images, 0, False, torch.Generator().manual_seed(1))
    assert torch.equal(out, images)
    flipped = augment.augment_batch(images, 0, True, torch.Generator().manual_seed(1))
    mirrored = sum(torch.equal(a, b.flip(-1)) for a, b in zip(flipped, images))
    assert 16 < mirrored < 48


def test_padding_scales_with_image_size():
    assert augment.crop_padding(32, 32) == 4
    assert augment.crop_padding(16, 16) == 2
    assert augment.crop_padding(224, 224) == 28


# ---------------------------------------------------------------- batch order

def test_epoch_order_depends_on_seed_and_epoch_only():
    labels = [0] * 30 + [1] * 10
    a, b = loader.EpochBatches(labels, 8, True, seed=3), loader.EpochBatches(labels, 8, True, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert sorted(i for batch in a for i in batch) == list(range(40))


def test_last_training_batch_of_one_is_dropped():
    batches = loader.EpochBatches([0] * 17, 8, True)
    assert len(batches) == 2 and [len(b) for b in batches] == [8, 8]
    assert [len(b) for b in loader.EpochBatches([0] * 17, 8, False)] == [8, 8, 1]


def test_shards_cover_every_image_once_in_evaluation():
    labels = list(range(11))
    shards = [sorted(i for b in loader.EpochBatches(labels, 4, False, rank=r, world_size=3) for i in b) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))
    train = [loader.EpochBatches(labels, 4, True, rank=r, world_size=3) for r in range(3)]
    assert len({len(t) for t in train}) == 1  # every process takes the same number of steps


def test_class_balanced_sampler_is_near_uniform_over_classes():
    counts = [500, 150, 40, 10]
    labels = np.repeat(np.arange(4), counts)
    batches = loader.EpochBatches(labels, 64, True, sampler="class_balanced", seed=0)
    drawn = np.concatenate([labels[b] for epoch in range(5) for b in (batches.set_epoch(epoch) or list(batches))])
    frequency = np.bincount(drawn, minlength=4) / len(drawn)
    # 3,500 draws: the standard error of each share is about 0.007
    assert np.abs(frequency - 0.25).max() < 0.03
    sqrt = loader.EpochBatches(labels, 64, True, sampler="sqrt", seed=0)
    drawn = np.concatenate([labels[b] for b in sqrt])
    expected = np.sqrt(counts) / np.sqrt(counts).sum()
    assert np.abs(np.bincount(drawn, minlength=4) / len(drawn) - expected).max() < 0.05


# ---------------------------------------------------------------- the two data paths

def _stream(split, cache_mb, train=False, **options):
    return loader.BatchStream(split, 16, 16, 8, train=train, device="cpu", cache_mb=cache_mb, workers=0,
                              progress=False, seed=5, **options)


def test_cached_and_file_paths_give_the_same_batches(tmp_path):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    cached, files = _stream(split, 1024), _stream(split, 0)
    assert cached.cached and not files.cached
    assert cached.class_counts == files.class_counts == [12, 8, 4]
    (cached_mean, cached_std), (files_mean, files_std) = (loader.channel_stats(stream.raw_batches())
                                                          for stream in (cached, files))
    assert cached_mean == pytest.approx(files_mean) and cached_std == pytest.approx(files_std)
    mean, std = loader.train_stats(cached, 16, 16)
    for stream in (cached, files):
        stream.set_normalization(mean, std)
    for (a, la), (b, lb) in zip(cached, files):
        assert torch.equal(la, lb) and torch.allclose(a, b)
    train_cached, train_files = _stream(split, 1024, train=True), _stream(split, 0, train=True)
    for stream in (train_cached, train_files):
        stream.set_normalization(mean, std)
        stream.set_epoch(4)
    for (a, la), (b, lb) in zip(train_cached, train_files):  # same order and the same random crops
        assert torch.equal(la, lb) and torch.allclose(a, b)


def test_same_validation_accuracy_on_both_paths(tmp_path):
    root = make_dataset(tmp_path)
    train = script("1_train")
    split = loader.scan_split(root / "valid", list(CLASSES))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
    runtime = Runtime()
    results = []
    for cache_mb in (1024, 0):
        stream = _stream(split, cache_mb)
        stream.set_normalization([0.4, 0.4, 0.4], [0.3, 0.3, 0.3])
        results.append(train.evaluate(model, torch.nn.CrossEntropyLoss(), stream, runtime))
    assert (results[0]["predictions"] == results[1]["predictions"]).all()
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)


def test_stats_are_cached_and_invalidated(tmp_path):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    mean, std = loader.train_stats(_stream(split, 1024), 16, 16)
    record = json.loads((root / ".cache" / "stats-16x16.json").read_text())
    assert record["mean"] == pytest.approx(mean)
    assert 0.1 < mean[0] < 0.6 and all(0 < s < 0.5 for s in std)
    (root / ".cache" / "stats-16x16.json").write_text(json.dumps({**record, "mean": [9, 9, 9]}))
    assert loader.train_stats(_stream(split, 1024), 16, 16)[0] == [9, 9, 9]  # reused while files are unchanged
    touched = split.paths[0]
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 10**9))
    split = loader.scan_split(root / "train")
    assert loader.train_stats(_stream(split, 1024), 16, 16)[0] == pytest.approx(mean, abs=1e-6)


def test_disk_cache_is_reused(tmp_path, monkeypatch):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    images, labels = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    assert len(list((root / ".cache").glob("train-16x16-*.pt"))) == 1
    decoded = []
    original = loader.decode_image
    monkeypatch.setattr(loader, "decode_image", lambda *args: decoded.append(args[0]) or original(*args))
    again, again_labels = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    assert torch.equal(again, images) and torch.equal(again_labels, labels)
    assert len(decoded) == loader.CACHE_SPOT_CHECKS < len(split)  # read back, a few images checked


def test_a_stale_or_truncated_disk_cache_is_decoded_again(tmp_path):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    images, labels = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    (cache,) = (root / ".cache").glob("train-16x16-*.pt")
    record = torch.load(cache, weights_only=True)
    torch.save({**record, "images": images.flip(0)}, cache)  # another dataset's pixels under this name
    with pytest.warns(UserWarning, match="does not hold the images of"):
        again, _ = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    assert torch.equal(again, images)
    cache.write_bytes(cache.read_bytes()[:300])  # a truncated file
    with pytest.warns(UserWarning, match="ignoring the damaged cache"):
        again, _ = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    assert torch.equal(again, images)
    assert torch.equal(loader.decode_split(split, 16, 16, disk_cache=True, progress=False)[0], images)  # rewritten


def test_disk_cache_is_invalidated_when_files_change(tmp_path):
    root = make_dataset(tmp_path)
    split = loader.scan_split(root / "train")
    images, _ = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    first = set((root / ".cache").glob("train-16x16-*.pt"))
    replacement = root / "train" / "cat" / "0.png"
    from PIL import Image
    Image.new("RGB", (16, 16), (1, 2, 3)).save(replacement)
    os.utime(replacement, ns=(time.time_ns(), time.time_ns() + 10**9))
    split = loader.scan_split(root / "train")
    again, _ = loader.decode_split(split, 16, 16, disk_cache=True, progress=False)
    assert set((root / ".cache").glob("train-16x16-*.pt")) - first  # a new cache for the new contents
    index = split.paths.index(replacement)
    assert again[index, :, 0, 0].tolist() == [1, 2, 3] and not torch.equal(again, images)


def test_file_path_skips_bad_images_in_its_batch(tmp_path):
    root = make_dataset(tmp_path)
    (root / "train" / "dog" / "broken.png").write_bytes(b"broken")
    split = loader.scan_split(root / "train")
    stream = loader.BatchStream(split, 16, 16, 64, train=False, device="cpu", cache_mb=0, workers=0,
                                skip_bad_images=True, progress=False)
    with pytest.warns(UserWarning, match="broken.png"):
        (labels,) = [batch_labels for _, batch_labels in stream.loader]
    assert len(labels) == len(split) - 1


def test_rrc_flip_and_the_evaluation_crop_are_torchvisions(tmp_path):
    from PIL import Image
    from torchvision.transforms import v2
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path, quality=95)
    full = loader._decode_full(path, "hint")
    assert full.shape == (3, 60, 80) and full.dtype == torch.uint8
    for seed in range(5):
        torch.manual_seed(seed)
        ours = loader.decode_image(path, 32, 24, sizing=loader.Sizing(random_crop=True))
        torch.manual_seed(seed)
        theirs = v2.Compose([v2.RandomResizedCrop((32, 24), antialias=True), v2.RandomHorizontalFlip()])(full)
        assert ours.shape == (3, 32, 24) and torch.equal(ours, theirs)
    centre = loader.decode_image(path, 32, 32, sizing=loader.Sizing(resize_shorter=37))
    assert torch.equal(centre, v2.CenterCrop((32, 32))(v2.Resize(37, antialias=True)(full)))
    assert loader.default_eval_resize(224, 224) == 256 and loader.default_eval_resize(32, 32) == 37


def test_rrc_flip_trains_on_the_file_path_and_evaluates_on_the_centre(tmp_path):
    from conftest import FAST, call
    make_dataset(tmp_path / "a_datasets", size=24)
    (tmp_path / "logs").mkdir()
    result = call("1_train.py", *FAST, "--epochs=1", "--augment=rrc_flip", "--workers=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "logs" / "SimpleCNN" / "tiny" / "ERM").iterdir())
    assert json.loads((run_dir / "config.json").read_text())["args"]["eval_resize"] == 18  # 16 * 256 / 224
    assert call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", "--datetime=latest",
                cwd=tmp_path).returncode == 0
    small = call("1_train.py", *FAST, "--epochs=1", "--eval_resize=8", cwd=tmp_path)
    assert small.returncode == 2 and "--eval_resize 8 is smaller than the 16x16 centre" in small.stderr
    stream = loader.BatchStream(loader.scan_split(tmp_path / "a_datasets" / "tiny" / "train"), 16, 16, 8, train=True,
                                device="cpu", augment="rrc_flip", workers=0, progress=False)
    assert not stream.cached and stream.padding == 0 and not stream.flip  # crops and flips each full image


def test_normalise_is_the_formula_and_leaves_its_input_alone():
    images = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(loader.normalise(images, mean, std), expected)  # bit for bit: training numbers unchanged
    floats = images.float()
    loader.normalise(floats, mean, std)
    assert torch.equal(floats, images.float())  # a float input is not normalised in place
