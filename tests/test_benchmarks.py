"""data_split.py --from_torchvision: long-tailed benchmarks from torchvision-style datasets (never downloads)."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

import benchmarks
from conftest import call
from utils import UserError

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # Cao et al. (2019)


class FakeDataset:
    """The interface data_split uses of a torchvision dataset: len, [i] -> (PIL image, label), targets, classes."""

    def __init__(self, counts, classes, offset=0):
        self.targets = [label for label, n in enumerate(counts) for _ in range(n)]
        self.classes = classes
        self.offset = offset

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        # The pixel values encode the index, so a written file says which image it is.
        value = self.offset + index
        pixels = np.array([[value % 256, value // 256 % 256]], dtype=np.uint8)
        return Image.fromarray(np.repeat(pixels, 2, axis=0), mode="L"), self.targets[index]


def image_index(path):
    pixels = np.asarray(Image.open(path))
    return int(pixels[0, 0]) + 256 * int(pixels[0, 1])


def test_published_cifar10_lt_counts():
    assert benchmarks.long_tail_counts(5000, 10, 100) == CIFAR10_LT_100
    assert sum(benchmarks.long_tail_counts(500, 100, 100)) == 10847  # CIFAR-100-LT's published size
    assert benchmarks.long_tail_counts(5000, 10, 100, "step") == [5000] * 5 + [50] * 5
    assert benchmarks.long_tail_counts(40, 5, None) == [40] * 5


def test_exact_published_counts_with_valid_from_test():
    train = np.repeat(np.arange(10), 5000)
    test = np.repeat(np.arange(10), 1000)
    plan = benchmarks.plan_benchmark(train, test, 10, imbalance_ratio=100, valid_per_class=100, valid_source="test")
    assert [len(plan["train"][k][1]) for k in range(10)] == CIFAR10_LT_100
    assert all(plan["valid"][k][0] == "test" and len(plan["valid"][k][1]) == 100 for k in range(10))
    assert all(len(plan["test"][k][1]) == 900 for k in range(10))
    for k in range(10):
        assert not set(plan["valid"][k][1]) & set(plan["test"][k][1])


def test_default_valid_from_train_lowers_n_max():
    train = np.repeat(np.arange(10), 5000)
    test = np.repeat(np.arange(10), 1000)
    plan = benchmarks.plan_benchmark(train, test, 10, imbalance_ratio=100, valid_per_class=100)
    assert [len(plan["train"][k][1]) for k in range(10)] == benchmarks.long_tail_counts(4900, 10, 100)
    for k in range(10):
        assert plan["valid"][k][0] == "train" and len(plan["valid"][k][1]) == 100
        assert not set(plan["valid"][k][1]) & set(plan["train"][k][1])
        assert len(plan["test"][k][1]) == 1000


def test_too_many_images_asked_is_an_error():
    train, test = np.repeat(np.arange(3), 50), np.repeat(np.arange(3), 10)
    with pytest.raises(UserError, match="--n_max 50 asks for more"):
        benchmarks.plan_benchmark(train, test, 3, imbalance_ratio=10, valid_per_class=5, n_max=50)
    with pytest.raises(UserError, match="--valid_per_class 10 leaves nothing"):
        benchmarks.plan_benchmark(train, test, 3, valid_per_class=10, valid_source="test")


def test_class_folders_keep_the_label_order():
    assert benchmarks.class_folders(["airplane", "bird", "cat"]) == ["airplane", "bird", "cat"]
    assert benchmarks.class_folders(["T-shirt/top", "Trouser", "Ankle boot"]) == \
        ["0_T-shirt-top", "1_Trouser", "2_Ankle-boot"]
    assert benchmarks.class_folders([str(k) for k in range(12)])[:2] == ["00_0", "01_1"]


def test_class_names_undo_the_label_prefix_of_every_folder():
    assert benchmarks.class_names(["0_T-shirt-top", "1_Trouser", "2_Ankle-boot"]) == ["T-shirt-top", "Trouser",
                                                                                     "Ankle-boot"]
    assert benchmarks.class_names(benchmarks.class_folders([str(k) for k in range(12)])) == [str(k) for k in range(12)]
    assert benchmarks.class_names(["ankle_boot", "3_dogs", "cat"]) == ["ankle boot", "3 dogs", "cat"]  # not all
    assert benchmarks.class_names(["2019_cars", "2020_cars"]) == ["2019 cars", "2020 cars"]  # not their labels
    assert benchmarks.class_names(benchmarks.class_folders(["great_white shark", "a"], always_numbered=True)) == \
        ["great white-shark", "a"]


@pytest.mark.parametrize("kind,valid_source", [("exp", "train"), ("step", "train"), ("exp", "test")])
def test_export_writes_the_planned_images(tmp_path, kind, valid_source):
    classes = ["zebra", "ant", "cat", "dog"]  # not sorted: folders get label prefixes
    train_set, test_set = FakeDataset([60] * 4, classes), FakeDataset([12] * 4, classes, offset=1000)
    destination = tmp_path / "a_datasets" / "toy-lt"
    benchmarks.export_benchmark(train_set, test_set, classes, destination, imbalance_ratio=10, imbalance_type=kind,
                                valid_per_class=4, valid_source=valid_source, seed=3, progress=False)
    folders = ["0_zebra", "1_ant", "2_cat", "3_dog"]
    n_max = 60 - (4 if valid_source == "train" else 0)
    expected = {"train": benchmarks.long_tail_counts(n_max, 4, 10, kind), "valid": [4] * 4,
                "test": [12 - (4 if valid_source == "test" else 0)] * 4}
    seen = {"train": set(), "test": set()}
    for split, counts in expected.items():
        assert sorted(p.name for p in (destination / split).iterdir()) == folders
        for label, folder in enumerate(folders):
            files = sorted((destination / split / folder).glob("*.png"))
            assert len(files) == counts[label]
            source = "test" if split == "test" or (split == "valid" and valid_source == "test") else "train"
            dataset = train_set if source == "train" else test_set
            for path in files:
                index = image_index(path) - dataset.offset
                assert int(path.stem) == index and dataset.targets[index] == label
                assert index not in seen[source], f"{path} is in two splits"
                seen[source].add(index)


def test_seed_chooses_the_images(tmp_path):
    classes = ["a", "b"]
    picked = []
    for seed in (0, 0, 1):
        destination = tmp_path / f"out{len(picked)}"
        benchmarks.export_benchmark(FakeDataset([40, 40], classes), FakeDataset([5, 5], classes), classes,
                                    destination, imbalance_ratio=4, valid_per_class=2, seed=seed, progress=False)
        picked.append(sorted(p.name for p in (destination / "train" / "b").iterdir()))
    assert picked[0] == picked[1] != picked[2]
    assert len(picked[0]) == 9  # int(38 / 4)


def write_idx(path, array):
    """An IDX file (the MNIST format) of uint8 ``array``, gzip-compressed."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(header + array.astype(np.uint8).tobytes())


def fake_mnist_raw(root, name="FashionMNIST", per_class=(30, 6)):
    """Re-compressed raw files, as Debian ships them: torchvision's checksums do not match."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    for prefix, n in zip(("train", "t10k"), per_class):
        labels = np.repeat(np.arange(10), n)
        images = np.zeros((len(labels), 28, 28))
        images[:, 0, 0] = labels * 20
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_mnist_family_offline_from_recompressed_gz(tmp_path):
    fake_mnist_raw(tmp_path / "data")
    result = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--imbalance_ratio", "10",
                 "--valid_per_class", "5", "--no_download", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a_datasets" / "FashionMNIST-LT"
    folders = sorted(p.name for p in (out / "train").iterdir())
    assert folders[0] == "0_T-shirt-top" and folders[9] == "9_Ankle-boot"
    counts = [len(list((out / "train" / folder).iterdir())) for folder in folders]
    assert counts == benchmarks.long_tail_counts(25, 10, 10)
    assert all(len(list((out / "test" / folder).iterdir())) == 6 for folder in folders)
    assert "total" in result.stdout and "60000" not in result.stdout
    with Image.open(next((out / "train" / folders[3]).iterdir())) as image:
        assert image.size == (28, 28) and image.getpixel((0, 0)) == 60
    again = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download", cwd=tmp_path)
    assert again.returncode == 0  # a second name (no ratio): FashionMNIST, balanced
    refused = call("data_split.py", "--from_torchvision", "FashionMNIST", "--root", "data", "--no_download", cwd=tmp_path)
    assert refused.returncode == 2 and "already exists; pass --force" in refused.stderr


@pytest.mark.parametrize("name,hint", [
    ("FashionMNIST", "t10k-labels-idx1-ubyte.gz into {root}/FashionMNIST/raw/"),
    ("CIFAR10", "cifar-10-python.tar.gz into {root}/"),
    ("SVHN", "train_32x32.mat and test_32x32.mat into {root}/"),
])
def test_offline_error_says_which_file_to_put_where(tmp_path, name, hint):
    result = call("data_split.py", "--from_torchvision", name, "--root", "empty", "--no_download", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: {name} could not be read") and hint.format(root="empty") in result.stderr
    assert not (tmp_path / "a_datasets").exists()


def test_unknown_torchvision_dataset(tmp_path):
    result = call("data_split.py", "--from_torchvision", "ImageNet", "--no_download", cwd=tmp_path)
    assert result.returncode == 2 and "unknown dataset 'ImageNet'; choose one of CIFAR10, CIFAR100" in result.stderr
