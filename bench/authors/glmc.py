"""GLMC's own training code (Du et al., CVPR 2023; ynu-yangpeng/GLMC) on a dataset folder of this project, for the
side-by-side with this project's GLMC row.

Their files are not changed: this script imports their ``Trainer`` and gives it what their ``main.py`` would have
built, from this project's data and network instead:

- data: ``a_datasets/<name>/{train,valid,test}`` through torchvision's ``ImageFolder``, the plan's augmentation
  (random crop with 4 px of zero padding, no flip) as their ``TwoCropTransform`` of it, the training split's mean
  and std; the loaders their ``main.py`` L129-147 builds (shuffled, and a ``WeightedRandomSampler`` with
  ``n_k^-q`` weights), with no worker processes;
- network: this project's SimpleCNN (index 41) as the backbone, with their heads around its features
  (``fc``, ``fc_cb``, ``projection_head`` Linear(d, 128), ``contrast_head`` Linear(128, 128),
  ``model/ResNet_cifar.py`` L66-76, initialised by their ``_weights_init``), called as their network is
  (``model(x, train=True)`` gives ``out, out_cb, z, p``; evaluation reads ``fc_cb``);
- device: their code calls ``.cuda()``; on a machine without a GPU those calls return the tensor or module as it is;
- results: their ``validate`` is wrapped to record each epoch's validation accuracy; the checkpoint their
  ``save_checkpoint`` keeps as best (highest validation top-1) is evaluated on ``test/`` here.

    git clone https://github.com/ynu-yangpeng/GLMC && git -C GLMC checkout 2c0261c
    python bench/authors/glmc.py --code GLMC/GLMC-2023 --dataset fmnist-lt --seed 0 \\
        --out results/authors/glmc/fmnist-lt-seed0

writes ``valid.csv`` (epoch, validation top-1), ``test_predictions.npz`` (paths, targets, predicted) and
``run.json`` (their commit, the settings, the chosen epoch) into ``--out``: what ``tables.py`` reads.
"""
import argparse
import csv
import json
import logging
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder, also when loaded from its file
import atomic_json  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]


def load_simple_cnn():
    """This project's SimpleCNN class, loaded from its file (their ``utils`` package must keep its name)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("project_simple_cnn", PROJECT / "b_models" / "simple_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleCNN


class GLMCNetwork(nn.Module):
    """SimpleCNN's features with GLMC's heads, answering as their ``ResNet_modify.forward`` does."""

    def __init__(self, num_classes, weights_init, hidden=128):
        super().__init__()
        backbone = load_simple_cnn()(num_classes)
        self.features = backbone.features
        dim = backbone.fc.in_features
        self.fc = nn.Linear(dim, num_classes)
        self.fc_cb = nn.Linear(dim, num_classes)
        self.contrast_head = nn.Sequential(nn.Linear(hidden, hidden))
        self.projection_head = nn.Sequential(nn.Linear(dim, hidden))
        for head in (self.fc, self.fc_cb, self.contrast_head, self.projection_head):
            head.apply(weights_init)

    def forward(self, x, train=False):
        feature = self.features(x).flatten(1)
        if train is True:
            z = self.projection_head(feature)
            return self.fc(feature), self.fc_cb(feature), z, self.contrast_head(z)
        return self.fc_cb(feature)


class RGB:
    """Fashion-MNIST's grey images as the three channels this project's loader makes of them."""

    def __call__(self, image):
        return image.convert("RGB")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", required=True, help="their GLMC-2023 folder (Trainer.py, utils/, model/)")
    parser.add_argument("--dataset", default="fmnist-lt")
    parser.add_argument("--data_dir", default=str(PROJECT / "a_datasets"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--out", required=True)
    # their README's CIFAR-10-LT command at ratio 100 (lr, batch, weight decay, q, gamma, c)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--weight_decay", type=float, default=5e-3)
    parser.add_argument("--resample_weighting", type=float, default=0.0)
    parser.add_argument("--label_weighting", type=float, default=1.2)
    parser.add_argument("--contrast_weight", type=int, default=4)
    parser.add_argument("--beta", type=float, default=0.5)
    return parser


def main(args):
    code = Path(args.code).resolve()
    if not (code / "Trainer.py").is_file():
        sys.exit(f"error: {code} has no Trainer.py; give --code the GLMC-2023 folder of their repository")
    torch.Tensor.cuda = lambda self, *a, **k: self  # no GPU here: their .cuda() calls leave things where they are
    nn.Module.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(code))
    from Trainer import Trainer
    from model.ResNet_cifar import _weights_init

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    root = Path(args.data_dir) / args.dataset
    stats = json.loads((root / ".cache" / f"stats-{args.size}x{args.size}.json").read_text())
    normalise = transforms.Normalize(stats["mean"], stats["std"])
    padding = max(1, round(4 * args.size / 32))
    train_transform = transforms.Compose([RGB(), transforms.Resize((args.size, args.size)),
                                          transforms.RandomCrop(args.size, padding=padding), transforms.ToTensor(),
                                          normalise])
    eval_transform = transforms.Compose([RGB(), transforms.Resize((args.size, args.size)), transforms.ToTensor(),
                                         normalise])
    two_crops = lambda image: [train_transform(image), train_transform(image)]  # their TwoCropTransform
    train_set = datasets.ImageFolder(root / "train", transform=two_crops)
    valid_set = datasets.ImageFolder(root / "valid", transform=eval_transform)
    test_set = datasets.ImageFolder(root / "test", transform=eval_transform)
    counts = np.bincount(train_set.targets, minlength=len(train_set.classes))
    weights = 1.0 / counts ** args.resample_weighting
    weights = weights / weights.sum() * len(counts)
    sampler = torch.utils.data.WeightedRandomSampler(torch.from_numpy(weights[train_set.targets]).double(),
                                                     len(train_set), replacement=True)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    weighted_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    valid_loader = torch.utils.data.DataLoader(valid_set, batch_size=args.batch_size, shuffle=False)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = Path(tempfile.mkdtemp(prefix="glmc-"))
    settings = argparse.Namespace(gpu=None, print_freq=1000, lr=args.lr, label_weighting=args.label_weighting,
                                  epochs=args.epochs, start_epoch=0, num_classes=len(counts),
                                  contrast_weight=args.contrast_weight, beta=args.beta,
                                  weight_decay=args.weight_decay, dataset=args.dataset,
                                  root_model=str(checkpoints), store_name="run")
    (checkpoints / "run").mkdir()
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    model = GLMCNetwork(len(counts), _weights_init)
    trainer = Trainer(settings, model=model, train_loader=train_loader, val_loader=valid_loader,
                      weighted_train_loader=weighted_loader, per_class_num=counts, log=logging)
    curve = []
    their_validate = trainer.validate

    def validate(epoch=None):
        accuracy = their_validate(epoch=epoch)
        curve.append((epoch + 1, float(accuracy)))
        return accuracy
    trainer.validate = validate
    trainer.train()

    best = torch.load(checkpoints / "run" / "ckpt.best.pth.tar", map_location="cpu", weights_only=True)
    model.load_state_dict(best["state_dict"])
    model.eval()
    predicted = []
    with torch.no_grad():
        for images, _ in torch.utils.data.DataLoader(test_set, batch_size=256):
            predicted.append(model(images).argmax(dim=1))
    paths = np.array([str(Path(path).relative_to(root)) for path, _ in test_set.samples])
    np.savez_compressed(out / "test_predictions.npz", paths=paths, targets=np.array(test_set.targets, np.uint8),
                        predicted=torch.cat(predicted).numpy().astype(np.uint8), classes=np.array(test_set.classes))
    with open(out / "valid.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "acc"])
        writer.writerows(curve)
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    chosen = max(curve, key=lambda row: row[1])
    atomic_json.write({
        "code": "ynu-yangpeng/GLMC", "commit": commit or "unknown", "script": "bench/authors/glmc.py",
        "settings": {key: value for key, value in vars(args).items() if key not in ("code", "out", "data_dir")},
        "chosen_epoch": chosen[0], "class_counts": counts.tolist(), "torch": torch.__version__}, out / "run.json")
    print(f"wrote {out}: best validation top-1 {chosen[1]:.2f} at epoch {chosen[0]}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
