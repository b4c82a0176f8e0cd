"""RIDE's own training code (Wang et al., ICLR 2021; frank-xwang/RIDE-LongTailRecognition at ab8be5c) on a dataset
folder of this project, for the side-by-side with this project's RIDE row (``LDAM:--drw,--method=ride``).

Their files are not changed: this script builds the config their ``train.py`` reads (with their ``ConfigParser``,
from a dict instead of a JSON file), registers this project's data and network under two names of their
``data_loader.data_loaders`` and ``model.model`` modules, and calls their ``train.main``, which builds their
``RIDELoss``, SGD, ``CustomLR`` schedule, ``accuracy`` metric and ``Trainer`` as it always does:

- data: ``a_datasets/<name>/{train,valid,test}`` through torchvision's ``ImageFolder``, the plan's augmentation
  (random crop with 4 px of zero padding, no flip), the training split's mean and std; shuffled batches of 128 as
  their CIFAR loader gives (``data_loader/cifar_data_loaders.py`` L143-156), with no worker processes; ``valid/``
  is what their trainer validates on (theirs validates on the test set);
- network: the same network as this project's RIDE on SimpleCNN, ``methods.experts.multi_expert`` of SimpleCNN
  (index 41) with a ``NormedLinear`` head of scale 1, three experts, 3/4 wide, inside their ``model.model.Model``;
  like their ``ride_resnet_cifar.ResNet_s`` it returns the mean of 30 x the cosines of each expert and keeps the
  experts' logits in ``backbone.logits``, which their trainer hands to ``RIDELoss`` (``trainer/trainer.py``
  L123-140), whose margins are m * s on those x30 logits (``model/loss.py`` L201-214);
- loss: their CIFAR-100 config's values (diversity -0.45, reweight on), ``reweight_epoch`` 11: their hook
  re-weights when ``epoch > reweight_epoch`` with epochs counted from 1 (``model/loss.py`` L194), so from their
  epoch 12, which is this project's ``--drw_epoch 11`` counted from 0;
- optimisation: the plan's (lr 0.1, momentum 0.9, no Nesterov, weight decay 5e-4, 15 epochs, x0.2 at epochs 12
  and 14 counted from 1, i.e. ``--lrstep 11 2 2``) through their ``CustomLR`` (``train.py`` L46-62); its 5-epoch
  warm-up steps once per epoch (0.02, 0.04, ..., 0.1), the project's once per iteration;
- device: their one ``.cuda()`` (``model/loss.py`` L172) leaves the tensor where it is on a machine without a GPU;
- results: their trainer's validation accuracy of each epoch is recorded; the checkpoint their trainer keeps as
  ``model_best.pth`` (highest ``val_accuracy``, ties to the later epoch) is evaluated on ``test/`` here.

Their ``utils`` needs pandas before 3.0 (their ``MetricTracker`` assigns through chained indexing, which pandas 3
ignores); it is not one of this project's requirements, so it goes beside their code:

    git clone https://github.com/frank-xwang/RIDE-LongTailRecognition RIDE && git -C RIDE checkout ab8be5c
    pip install --no-deps --target RIDE-deps "pandas==2.3.3" pytz tzdata
    PYTHONPATH=RIDE-deps python bench/authors/ride.py --code RIDE --dataset fmnist-lt --seed 0 \\
        --out results/authors/ride/fmnist-lt-seed0

writes ``valid.csv`` (epoch, validation top-1), ``test_predictions.npz`` (paths, targets, predicted) and
``run.json`` (their commit, the settings, their config, the chosen epoch) into ``--out``: what ``tables.py`` reads.
"""
import argparse
import contextlib
import csv
import json
import random
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder, also when loaded from its file
import atomic_json  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
# The names this script adds to their modules, which their config's "type" entries name.
LOADER_NAME = "ProjectImageFolderDataLoader"
MODEL_NAME = "ProjectSimpleCNNRIDEModel"


class SetupError(Exception):
    """What is missing before their code can run (their folder, pandas, the dataset's statistics)."""


class RGB:
    """Fashion-MNIST's grey images as the three channels this project's loader makes of them."""

    def __call__(self, image):
        return image.convert("RGB")


def image_transforms(stats_file, size):
    """The plan's training augmentation (random crop with zero padding of 4 px at 32, no flip) and the evaluation
    transform, both normalised by the training split's mean and std."""
    stats = json.loads(Path(stats_file).read_text())
    normalise = transforms.Normalize(stats["mean"], stats["std"])
    padding = max(1, round(4 * size / 32))
    train = transforms.Compose([RGB(), transforms.Resize((size, size)), transforms.RandomCrop(size, padding=padding),
                                transforms.ToTensor(), normalise])
    evaluation = transforms.Compose([RGB(), transforms.Resize((size, size)), transforms.ToTensor(), normalise])
    return train, evaluation


class ProjectImageFolderDataLoader(torch.utils.data.DataLoader):
    """A dataset folder of this project, answering as their ``ImbalanceCIFAR100DataLoader`` does: the training
    batches, ``cls_num_list`` and ``split_validation()`` (here the ``valid/`` split, unshuffled)."""

    def __init__(self, data_dir, batch_size, shuffle=True, num_workers=0, size=28):
        root = Path(data_dir)
        train_transform, eval_transform = image_transforms(root / ".cache" / f"stats-{size}x{size}.json", size)
        dataset = datasets.ImageFolder(root / "train", transform=train_transform)
        self.val_dataset = datasets.ImageFolder(root / "valid", transform=eval_transform)
        self.cls_num_list = np.bincount(dataset.targets, minlength=len(dataset.classes)).tolist()
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)

    def split_validation(self):
        return torch.utils.data.DataLoader(self.val_dataset, batch_size=self.batch_size, shuffle=False,
                                           num_workers=self.num_workers)


def project_experts(num_classes, num_experts, reduce_dimension):
    """This project's RIDE network on SimpleCNN, built as ``1_train.py --model_index 41 --method ride`` builds it:
    SimpleCNN with the cosine head of scale 1 that LDAM's entry asks for, then ``multi_expert`` of it."""
    import importlib.util
    from b_models.heads import cosine_head, replace_classifier
    # by its file, not through the methods package, whose __init__ imports this project's utils (theirs is a package
    # of the same name)
    spec = importlib.util.spec_from_file_location("project_experts", PROJECT / "methods" / "experts.py")
    experts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(experts)
    from b_models.simple_cnn import SimpleCNN
    network = SimpleCNN(num_classes)
    replace_classifier(network, cosine_head(num_classes, 1.0), num_classes)
    return experts.multi_expert(network, num_experts, reduce_dimension)


class ExpertsAsRIDEBackbone(nn.Module):
    """This project's multi-expert network answering as their ``ride_resnet_cifar.ResNet_s`` does: ``forward``
    returns the mean of the experts' logits, each expert's cosines times ``s`` (L175, L196), and leaves the experts'
    logits, a list, in ``self.logits`` (L184) for their trainer to hand to the loss."""

    def __init__(self, num_classes, num_experts=3, reduce_dimension=True, s=30):
        super().__init__()
        self.experts = project_experts(num_classes, num_experts, reduce_dimension)
        self.num_experts, self.s = num_experts, s
        self.logits = []

    def _hook_before_iter(self):
        """Theirs puts frozen batch norms in eval mode (L154-164); nothing is frozen in stage 1."""

    def forward(self, x):
        expert_logits = self.experts(x, experts=True) * self.s
        self.logits = list(expert_logits.unbind(dim=1))
        return expert_logits.mean(dim=1)


def their_config(args, data_root, num_classes, save_dir):
    """The dict their ``ConfigParser`` reads, as ``configs/config_imbalance_cifar100_ride.json`` with this project's
    data, network and plan."""
    step1 = args.lrstep[0]
    return {
        "name": f"{args.dataset}_RIDE_SimpleCNN",
        "n_gpu": 1,  # theirs; without a GPU their trainer says so and runs on the CPU
        "arch": {"type": MODEL_NAME, "args": {"num_classes": num_classes, "num_experts": args.experts,
                                              "reduce_dimension": True, "s": 30}},
        "data_loader": {"type": LOADER_NAME, "args": {"data_dir": str(data_root), "batch_size": args.batch_size,
                                                      "shuffle": True, "num_workers": 0, "size": args.size}},
        "optimizer": {"type": "SGD", "args": {"lr": args.lr, "weight_decay": args.weight_decay,
                                              "momentum": args.momentum, "nesterov": False}},
        "add_extra_info": True,
        "loss": {"type": "RIDELoss", "args": {"additional_diversity_factor": args.diversity, "reweight": True,
                                              "reweight_epoch": args.drw_epoch}},
        "metrics": ["accuracy"],
        "lr_scheduler": {"type": "CustomLR", "args": {"step1": step1, "step2": step1 + args.lrstep[1],
                                                      "gamma": args.lrdecay, "warmup_epoch": args.warmup}},
        # a save period past the last epoch: only model_best.pth is written (base/base_trainer.py L111-114)
        "trainer": {"epochs": args.epochs, "save_dir": str(save_dir), "save_period": args.epochs + 1,
                    "verbosity": 2, "monitor": "max val_accuracy", "tensorboard": False},
    }


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", required=True, help="their repository's folder (train.py, trainer/, model/)")
    parser.add_argument("--dataset", default="fmnist-lt")
    parser.add_argument("--data_dir", default=str(PROJECT / "a_datasets"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--out", required=True)
    # the plan's optimisation (fmnist-lt: 3_run.sh) and their loss values (their CIFAR-100 RIDE config)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--lrstep", type=int, nargs=3, default=[11, 2, 2],
                        help="the plan's lr stages in epochs (their CustomLR's step1 and step2 are where stages 2 "
                             "and 3 start, counted from 0)")
    parser.add_argument("--lrdecay", type=float, default=0.2, help="the factor between stages (their gamma)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up epochs (their warmup_epoch)")
    parser.add_argument("--drw_epoch", type=int, default=11,
                        help="this project's --drw_epoch, counted from 0: their reweight_epoch, since they re-weight "
                             "from the epoch after it counted from 1")
    parser.add_argument("--diversity", type=float, default=-0.45, help="their additional_diversity_factor")
    parser.add_argument("--experts", type=int, default=3)
    return parser


def import_their_code(code):
    """Their modules, their folder first on the path (their ``utils`` and ``model`` packages keep their names) and
    this project's after it (for ``b_models``)."""
    if not ((code / "train.py").is_file() and (code / "model" / "loss.py").is_file()):
        raise SetupError(f"{code} has no train.py and model/loss.py; give --code the folder of their repository")
    try:
        import pandas
    except ImportError:
        pandas = None
    if pandas is None or int(pandas.__version__.split(".")[0]) >= 3:
        raise SetupError('their utils/util.py needs pandas before 3.0: pip install --no-deps --target RIDE-deps '
                         '"pandas==2.3.3" pytz tzdata, then run with PYTHONPATH=RIDE-deps')
    # Their MetricTracker adds through chained indexing, which pandas 2 still honours but warns about each time.
    warnings.filterwarnings("ignore", message="ChainedAssignmentError", category=FutureWarning)
    sys.path.insert(0, str(code))
    sys.path.append(str(PROJECT))
    import data_loader.data_loaders as module_data
    import model.model as module_arch
    import train
    from parse_config import ConfigParser
    from trainer import Trainer
    return train, ConfigParser, Trainer, module_data, module_arch


def main(args):
    code = Path(args.code).resolve()
    out = Path(args.out).resolve()
    root = Path(args.data_dir).resolve() / args.dataset
    if not (root / ".cache" / f"stats-{args.size}x{args.size}.json").is_file():
        raise SetupError(f"{root} has no .cache/stats-{args.size}x{args.size}.json (the training split's mean and "
                         "std, which data_split.py writes)")
    train, ConfigParser, Trainer, module_data, module_arch = import_their_code(code)
    if not torch.cuda.is_available():  # no GPU here: their .cuda() leaves the tensor where it is
        torch.Tensor.cuda = lambda self, *a, **k: self

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    train_folder = datasets.ImageFolder(root / "train")
    num_classes = len(train_folder.classes)
    setattr(module_data, LOADER_NAME, ProjectImageFolderDataLoader)
    setattr(module_arch, MODEL_NAME, lambda num_classes, **options: module_arch.Model(
        num_classes, lambda classes: ExpertsAsRIDEBackbone(classes, **options)))
    save_dir = Path(tempfile.mkdtemp(prefix="ride-"))
    config_dict = their_config(args, root, num_classes, save_dir)
    with contextlib.chdir(code):  # their logging config is read from logger/, relative to their folder
        config = ConfigParser(json.loads(json.dumps(config_dict)), run_id="run")

    curve = []
    their_valid_epoch = Trainer._valid_epoch

    def valid_epoch(self, epoch):
        log = their_valid_epoch(self, epoch)
        curve.append((epoch, round(100 * float(log["accuracy"]), 2)))
        return log
    Trainer._valid_epoch = valid_epoch
    try:
        train.main(config)
    finally:
        Trainer._valid_epoch = their_valid_epoch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    import pathlib

    from parse_config import ConfigParser  # their checkpoint holds their config object (and its paths) beside the
    with torch.serialization.safe_globals([ConfigParser, pathlib.PosixPath]):  # tensors; nothing else is allowed
        best = torch.load(config.save_dir / "model_best.pth", map_location=device, weights_only=True)
    model = config.init_obj("arch", module_arch).to(device)
    model.load_state_dict(best["state_dict"])
    model.eval()
    _, eval_transform = image_transforms(root / ".cache" / f"stats-{args.size}x{args.size}.json", args.size)
    test_set = datasets.ImageFolder(root / "test", transform=eval_transform)
    predicted = []
    with torch.no_grad():
        for images, _ in torch.utils.data.DataLoader(test_set, batch_size=256):
            predicted.append(model(images.to(device)).argmax(dim=1).cpu())
    out.mkdir(parents=True, exist_ok=True)
    paths = np.array([str(Path(path).relative_to(root)) for path, _ in test_set.samples])
    np.savez_compressed(out / "test_predictions.npz", paths=paths, targets=np.array(test_set.targets, np.uint8),
                        predicted=torch.cat(predicted).numpy().astype(np.uint8), classes=np.array(test_set.classes))
    with open(out / "valid.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "acc"])
        writer.writerows(curve)
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    counts = np.bincount(train_folder.targets, minlength=num_classes)
    config_dict["trainer"]["save_dir"] = config_dict["data_loader"]["args"]["data_dir"] = None  # this machine's
    atomic_json.write({
        "code": "frank-xwang/RIDE-LongTailRecognition", "commit": commit or "unknown",
        "script": "bench/authors/ride.py",
        "settings": {key: value for key, value in vars(args).items() if key not in ("code", "out", "data_dir")},
        "config": config_dict, "chosen_epoch": int(best["epoch"]), "class_counts": counts.tolist(),
        "torch": torch.__version__}, out / "run.json")
    print(f"wrote {out}: best validation top-1 {100 * best['monitor_best']:.2f} at epoch {best['epoch']} "
          f"(their log and checkpoints: {save_dir})")


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
