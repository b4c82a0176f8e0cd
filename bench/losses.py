"""Forward + backward time of each loss relative to plain cross entropy on (4096, 100) logits.

    python bench/losses.py            # CPU, and CUDA when available
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from criterion import ComplementEntropy, get_criterion  # noqa: E402


def time_losses(losses, logits, targets, repeats):
    """Median seconds of forward + backward per loss; the losses take turns so drift hits all alike."""
    times = {name: [] for name in losses}
    for round_index in range(repeats + 3):
        for name, loss_fn in losses.items():
            z = logits.detach().requires_grad_(True)
            _sync(logits.device)
            started = time.perf_counter()
            loss_fn(z, targets).backward()
            _sync(logits.device)
            if round_index >= 3:  # warm-up rounds
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a few repeats: a smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 2
    counts = torch.arange(1, args.classes + 1) * 10
    losses = {
        "CE (F.cross_entropy)": lambda z, y: F.cross_entropy(z, y),
        "ERM": get_criterion("ERM", args.classes),
        "CCE": get_criterion("CCE", args.classes),
        "COT complement step": ComplementEntropy(args.classes),
        "FL": get_criterion("FL", args.classes),
        "LDAM": get_criterion("LDAM", args.classes, class_counts=counts),
        "BS": get_criterion("BS", args.classes, class_counts=counts),
    }
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        logits = torch.randn(args.batch, args.classes, device=device)
        targets = torch.randint(0, args.classes, (args.batch,), device=device)
        for loss in losses.values():
            if isinstance(loss, torch.nn.Module):
                loss.to(device)
        seconds = time_losses(losses, logits, targets, args.repeats)
        baseline = seconds["CE (F.cross_entropy)"]
        print(f"{device}: ({args.batch}, {args.classes}) logits, forward + backward, median of {args.repeats}")
        for name, value in seconds.items():
            print(f"  {name:<22} {value * 1e3:8.3f} ms   {value / baseline:5.2f}x")


if __name__ == "__main__":
    main()
