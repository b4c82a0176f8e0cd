"""data_split.py --from_list: datasets defined by split lists (ImageNet-LT, Places-LT, iNaturalist 2018)."""
import os

import numpy as np
import pytest
from PIL import Image

import split_lists
from conftest import call

CLASSES = 12  # more than 10: folder "10" would sort before "2" without zero padding


def photo(path, label, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(rng.normal(20 * label, 25, (24, 32, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_lists(root, counts=(6, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2), crlf=False):
    """JPEGs under root/images/<wnid-like folder>/ and three lists; returns their paths."""
    rng = np.random.default_rng(0)
    lines = {"train": [], "valid": [], "test": []}
    for label, count in enumerate(counts):
        for split, n in (("train", count), ("valid", 1), ("test", 1)):
            for i in range(n):
                relative = f"{split}/c{label:02d}/{split}_{label}_{i}.jpg"
                photo(root / "images" / relative, label, rng)
                lines[split].append(f"{relative} {label}")
    ending = "\r\n" if crlf else "\n"
    paths = {}
    for split, rows in lines.items():
        paths[split] = root / f"{split}.txt"
        paths[split].write_text(ending.join(rows) + ending)
    return paths


def from_list(root, *extra):
    return call("data_split.py", "--from_list", "--train_list=train.txt", "--valid_list=valid.txt",
                "--test_list=test.txt", "--images=images", "--out_name=lists", *extra, cwd=root)


def test_lists_become_linked_class_folders_in_label_order(tmp_path):
    make_lists(tmp_path, crlf=True)
    result = from_list(tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a_datasets" / "lists"
    folders = sorted(p.name for p in (out / "train").iterdir())
    assert folders == [f"{label:02d}_c{label:02d}" for label in range(CLASSES)]  # sorted == label order
    image = next((out / "train" / folders[10]).iterdir())
    assert image.is_symlink() and os.readlink(image).startswith(str((tmp_path / "images").resolve()))
    assert sum(1 for _ in (out / "train").rglob("*.jpg")) == 38 and sum(1 for _ in (out / "test").rglob("*.jpg")) == 12
    assert "images: train 38, valid 12, test 12" in result.stdout and "imbalance ratio 3.0" in result.stdout
    assert "few (< 20) 12" in result.stdout
    copied = from_list(tmp_path, "--copy", "--force", "--out_name=copied")
    assert copied.returncode == 0 and not next((tmp_path / "a_datasets" / "copied" / "test").rglob("*.jpg")).is_symlink()


def test_one_epoch_of_training_and_an_evaluation_on_an_imported_dataset(tmp_path):
    make_lists(tmp_path)
    assert from_list(tmp_path).returncode == 0
    (tmp_path / "logs").mkdir()
    trained = call("1_train.py", "--model_index=41", "--dataset=lists", "--height=16", "--width=16", "--epochs=1",
                   "--batchsize=8", "--seed=0", "--lrstep", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    evaluated = call("2_test.py", "--model_index=41", "--dataset=lists", "--objective=ERM", "--datetime=latest",
                     cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "11_c11" in evaluated.stdout


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "images" / "train" / "c03" / "train_3_0.jpg").unlink(),
     "1 listed image(s) are not under images: train/c03/train_3_0.jpg; check --images, or pass --allow_missing"),
    (lambda root: root.joinpath("test.txt").write_text(root.joinpath("test.txt").read_text() + "test/c00/x.jpg 12\n"),
     "test: 1 label(s) outside 0..11: test/c00/x.jpg (12)"),
    (lambda root: root.joinpath("valid.txt").write_text(root.joinpath("valid.txt").read_text()
                                                        + "train/c00/train_0_0.jpg 0\n"),
     "1 image(s) are listed in both train and valid: train/c00/train_0_0.jpg"),
    (lambda root: root.joinpath("train.txt").write_text("train/c00/train_0_0.jpg\n"),
     "train.txt, line 1: expected 'relative/path label'"),
    (lambda root: root.joinpath("train.txt").write_text("train/c00/train_0_0.jpg 0\ntrain/c00/train_0_0.jpg 3\n"),
     "train: train/c00/train_0_0.jpg is listed with two labels (0 and 3)"),
])
def test_list_problems_are_one_error_line(tmp_path, damage, message):
    make_lists(tmp_path)
    damage(tmp_path)
    result = from_list(tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "a_datasets" / "lists").exists()


def test_missing_images_allowed_and_duplicates_reported(tmp_path):
    make_lists(tmp_path)
    (tmp_path / "images" / "train" / "c03" / "train_3_0.jpg").unlink()
    train = tmp_path / "train.txt"
    train.write_text(train.read_text() + "train/c00/train_0_1.jpg 0\n")
    result = from_list(tmp_path, "--allow_missing")
    assert result.returncode == 0, result.stderr
    assert "train: 1 path(s) listed more than once (kept once): train/c00/train_0_1.jpg" in result.stderr
    assert "left out (--allow_missing)" in result.stderr and "images: train 37," in result.stdout


def test_valid_taken_from_train_without_a_valid_list(tmp_path):
    make_lists(tmp_path)
    result = call("data_split.py", "--from_list", "--train_list=train.txt", "--test_list=test.txt", "--images=images",
                  "--out_name=lists", "--valid_per_class=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    valid = tmp_path / "a_datasets" / "lists" / "valid"
    assert sum(1 for _ in valid.rglob("*.jpg")) == 12  # one of every class
    train = {p.name for p in (tmp_path / "a_datasets" / "lists" / "train").rglob("*.jpg")}
    assert not train & {p.name for p in valid.rglob("*.jpg")} and len(train) == 26
    again = call("data_split.py", "--from_list", "--train_list=train.txt", "--test_list=test.txt", "--images=images",
                 "--out_name=lists3", "--valid_per_class=3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    per_class = sorted(sum(1 for _ in folder.iterdir()) for folder in (tmp_path / "a_datasets" / "lists3" / "valid").iterdir())
    assert per_class == [1] * 5 + [2] * 3 + [3] * 4  # classes of 2 and 3 images keep one for training
    train_file = tmp_path / "train.txt"
    train_file.write_text(train_file.read_text() + "train/c00/extra.jpg 12\n")
    (tmp_path / "images" / "train" / "c00" / "extra.jpg").write_bytes((tmp_path / "images" / "train" / "c00" / "train_0_0.jpg").read_bytes())
    single = call("data_split.py", "--from_list", "--train_list=train.txt", "--test_list=test.txt", "--images=images",
                  "--out_name=lists4", "--valid_per_class=1", cwd=tmp_path)
    assert single.returncode == 2 and "1 class(es) have a single training image" in single.stderr


def test_a_list_that_is_not_text(tmp_path):
    make_lists(tmp_path)
    (tmp_path / "train.txt").write_bytes(b"\xff\xfe\x00binary")
    result = from_list(tmp_path)
    assert result.returncode == 2 and "is not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


def test_published_totals_are_compared(capsys):
    entries = {"train": [split_lists.Entry(f"t/{i}", i % 365, i) for i in range(62_500)],
               "valid": [split_lists.Entry(f"v/{i}", i % 365, i) for i in range(7_300)],
               "test": [split_lists.Entry(f"s/{i}", i % 365, i) for i in range(36_000)]}
    split_lists.describe(entries, 365)
    out = capsys.readouterr().out
    assert "Places-LT: differs from the published totals: test 36,000 (published 36,500)" in out


def test_imagenet_class_names_come_with_torchvision():
    entries = [split_lists.Entry(f"train/n{label:08d}/x.JPEG", label, label) for label in range(1000)]
    names = split_lists.class_names(entries, 1000)
    assert names[0] == "tench" and names[999] == "toilet tissue"


def test_the_docs_name_the_class_folders_as_they_are_made():
    from benchmarks import class_folders
    from conftest import ROOT
    folders = class_folders(["tench"] + [f"class{i}" for i in range(998)] + ["toilet tissue"], always_numbered=True)
    assert folders[0] == "000_tench" and folders[-1] == "999_toilet-tissue"
    page = (ROOT / "docs" / "large-benchmarks.md").read_text()
    assert f"`{folders[0]}`" in page and f"`{folders[-1]}`" in page
