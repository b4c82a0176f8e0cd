"""Training images/s of (a) the project's data path, (b) synthetic in-memory tensors (compute only),
(c) a plain torchvision ImageFolder + PIL DataLoader; prints a/b and a/c measured in this one run,
and the images/s of both data paths alone.

    python bench/throughput.py --model_index 41 --dataset digits-lt --height 16 --width 16
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from get_model import get_model  # noqa: E402
from loader import BatchStream, load_splits, train_stats  # noqa: E402


def train_step_fn(model, optimizer, device, amp_dtype):
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(images, labels):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def measure(batches, step, device, max_batches, warmup=3):
    """Images/s over up to ``max_batches`` batches after ``warmup`` untimed ones."""
    seen, started = 0, None
    for index, (images, labels) in enumerate(batches()):
        if index == warmup:
            _sync(device)
            started, seen = time.perf_counter(), 0
        step(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        seen += len(labels)
        if index + 1 >= warmup + max_batches:
            break
    _sync(device)
    return seen / (time.perf_counter() - started)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def repeat(make_iterable):
    def batches():
        while True:
            yield from make_iterable()
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_index", type=int, default=41)
    parser.add_argument("--dataset", default="digits-lt")
    parser.add_argument("--data_dir", default="a_datasets")
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batchsize", type=int, default=128)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per measurement")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--quick", action="store_true", help="a few batches: a smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.batchsize = 2, min(args.batchsize, 8)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp_dtype = torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    split = load_splits(args.data_dir, args.dataset)["train"]
    model = get_model(args.model_index)(len(split.classes)).to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step = train_step_fn(model, optimizer, device, amp_dtype)

    stream = BatchStream(split, args.height, args.width, args.batchsize, train=True, device=device,
                         channels_last=channels_last, progress=False)
    stream.set_normalization(*train_stats(stream, args.height, args.width))
    synthetic_images = torch.randn(args.batchsize, 3, args.height, args.width, device=device)
    if channels_last:
        synthetic_images = synthetic_images.contiguous(memory_format=torch.channels_last)
    synthetic_labels = torch.randint(0, len(split.classes), (args.batchsize,), device=device)
    # Interleaved rounds, best of each: the order of measurements must not decide the ratio.
    project = compute = 0.0
    for _ in range(1 if args.quick else 2):
        compute = max(compute, measure(repeat(lambda: [(synthetic_images, synthetic_labels)]), step, device, args.batches))
        project = max(project, measure(repeat(lambda: iter(stream)), step, device, args.batches))

    from torchvision import datasets, transforms
    transform = transforms.Compose([
        transforms.Resize((args.height, args.width)), transforms.RandomCrop((args.height, args.width), padding=4),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.25] * 3)])
    folder = datasets.ImageFolder(str(split.root), transform=transform)
    plain = torch.utils.data.DataLoader(folder, batch_size=args.batchsize, shuffle=True, num_workers=args.workers,
                                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
                                        drop_last=True)
    baseline = measure(repeat(lambda: iter(plain)), step, device, args.batches)

    def no_step(images, labels):
        pass
    project_data = measure(repeat(lambda: iter(stream)), no_step, device, args.batches * 4)
    baseline_data = measure(repeat(lambda: iter(plain)), no_step, device, args.batches)

    print(f"model {get_model(args.model_index).__name__}, {args.dataset} train ({len(split)} images) at {args.height}x{args.width}, "
          f"batch {args.batchsize}, {device}")
    print(f"(a) project data path     {project:10.0f} images/s")
    print(f"(b) synthetic, in memory  {compute:10.0f} images/s")
    print(f"(c) ImageFolder + PIL     {baseline:10.0f} images/s  ({args.workers} workers)")
    print(f"a/b = {project / compute:.3f}   a/c = {project / baseline:.2f}")
    print(f"data only (no model): project {project_data:.0f} images/s, ImageFolder + PIL {baseline_data:.0f} images/s "
          f"({project_data / baseline_data:.1f}x)")


if __name__ == "__main__":
    main()
