"""data_split.py: stratified, reproducible, non-destructive splits and exact long-tail profiles."""
import math

import numpy as np
import pytest
from PIL import Image

from conftest import call, script

data_split = script("data_split")


def make_raw(root, counts):
    for k, (name, n) in enumerate(counts.items()):
        folder = root / "c_original_dataset" / "raw" / name
        folder.mkdir(parents=True)
        for i in range(n):  # every image different: one image twice is refused (data_split.check_distinct)
            Image.new("RGB", (4, 4), (i % 256, i // 256, k)).save(folder / f"{i}.png")
        (folder / ".DS_Store").write_bytes(b"x")
    return root / "c_original_dataset" / "raw"


def listing(folder):
    return {p.name: sorted(f.name for f in p.iterdir()) for p in sorted(folder.iterdir())}


def test_split_counts():
    assert data_split.split_counts(100, [0.8, 0.1, 0.1]) == (80, 10, 10)
    assert data_split.split_counts(7, [0.8, 0.1, 0.1]) == (5, 1, 1)  # each split gets at least one
    assert data_split.split_counts(10, [0.9, 0.1, 0.0]) == (9, 1, 0)


def test_exp_profile_is_exact():
    counts = {f"c{i}": 100 for i in range(5)}
    kept = data_split.kept_counts(counts, 10, "exp")
    assert list(kept.values()) == [math.floor(100 * 10 ** (-i / 4)) for i in range(5)] == [100, 56, 31, 17, 10]


def test_profile_ranks_by_size_then_name_and_caps():
    counts = {"b": 50, "a": 50, "c": 80, "d": 5}
    kept = data_split.kept_counts(counts, 4, "exp")
    # order c(80), a(50), b(50), d(5): targets 80, floor(80*4^-1/3)=50, floor(80*4^-2/3)=31, 20 -> capped at 5
    assert kept == {"c": 80, "a": 50, "b": 31, "d": 5}


def test_step_profile_is_exact():
    counts = {f"c{i}": 60 for i in range(6)}
    assert list(data_split.kept_counts(counts, 5, "step").values()) == [60, 60, 60, 12, 12, 12]


def test_split_is_stratified_reproducible_and_non_destructive(tmp_path):
    source = make_raw(tmp_path, {"a": 40, "b": 20, "c": 10})
    before = {p: p.read_bytes() for p in source.rglob("*")  if p.is_file()}
    result = call("data_split.py", "--dataset=raw", "--ratios", "0.6", "0.2", "0.2", "--seed=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a_datasets" / "raw"
    counts = {split: {c: len(files) for c, files in listing(out / split).items()} for split in ("train", "valid", "test")}
    assert counts == {"train": {"a": 24, "b": 12, "c": 6}, "valid": {"a": 8, "b": 4, "c": 2},
                      "test": {"a": 8, "b": 4, "c": 2}}
    for name in ("a", "b", "c"):
        files = [set(listing(out / split)[name]) for split in ("train", "valid", "test")]
        assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
        assert set.union(*files) == {f"{i}.png" for i in range(len(list((source / name).glob('*.png'))))}
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before  # originals untouched
    assert "a" in result.stdout and "24" in result.stdout  # the per-class table

    again = call("data_split.py", "--dataset=raw", "--ratios", "0.6", "0.2", "0.2", "--seed=3", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr
    first = {split: listing(out / split) for split in ("train", "valid", "test")}
    forced = call("data_split.py", "--dataset=raw", "--ratios", "0.6", "0.2", "0.2", "--seed=3", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert {split: listing(out / split) for split in ("train", "valid", "test")} == first  # same seed, same split
    other = call("data_split.py", "--dataset=raw", "--ratios", "0.6", "0.2", "0.2", "--seed=4", "--force",
                "--out_name=raw4", cwd=tmp_path)
    assert other.returncode == 0 and listing(tmp_path / "a_datasets" / "raw4" / "train") != first["train"]


def test_long_tailed_split_reduces_train_only(tmp_path):
    make_raw(tmp_path, {f"k{i}": 50 for i in range(4)})
    result = call("data_split.py", "--dataset=raw", "--ratios", "0.6", "0.2", "0.2", "--imbalance_ratio=8",
                 "--imbalance_type=exp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a_datasets" / "raw"
    train = sorted(len(files) for files in listing(out / "train").values())
    assert train == sorted(math.floor(30 * 8 ** (-i / 3)) for i in range(4)) == [3, 7, 15, 30]
    assert all(len(files) == 10 for files in listing(out / "valid").values())
    assert all(len(files) == 10 for files in listing(out / "test").values())


def test_too_small_classes_are_reported(tmp_path):
    make_raw(tmp_path, {"big": 30, "tiny": 2})
    result = call("data_split.py", "--dataset=raw", cwd=tmp_path)
    assert result.returncode == 2 and "tiny (2)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "a_datasets").exists()


def test_demo_builds_long_tailed_digits(tmp_path):
    result = call("data_split.py", "--demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    raw = tmp_path / "c_original_dataset" / "digits"
    assert sum(1 for _ in raw.rglob("*.png")) == 1797
    out = tmp_path / "a_datasets" / "digits-lt"
    train = {c: len(f) for c, f in listing(out / "train").items()}
    assert sorted(train) == [str(d) for d in range(10)]
    assert max(train.values()) / min(train.values()) == pytest.approx(10, rel=0.15)
    valid = [len(f) for f in listing(out / "valid").values()]
    assert max(valid) - min(valid) <= 2  # balanced
    image = np.array(Image.open(next((out / "test" / "3").iterdir())))
    assert image.shape == (8, 8) and image.max() > 200
