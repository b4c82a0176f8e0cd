"""What each LIFT module (``--method lift --lift_module``) costs to train on the CPU: for open_clip's CLIP ViT-B/16
architecture with random weights (nothing is downloaded), the trained parameters, the seconds of one training step
(forward, LA loss, backward, SGD step) on a batch of images at the model's size, images/s, the step's time relative
to ``none`` (the classifier alone) measured in this run, and the growth of the process's resident memory: after
the network is built, and at its peak (``VmHWM``) over the steps. Each module is measured in a fresh process, so
that peaks do not mix; the modules take turns for ``--rounds`` rounds and the fastest round of each is kept. The
CPU time of one ImageNet-LT epoch (115,846 training images) is extrapolated from the measured rate, at
``--threads`` threads on the machine that ran it.

    python bench/lift_cost.py                   # clip:ViT-B-16.openai, 224 px, batch 8, none adaptformer lora full
    python bench/lift_cost.py --quick           # a tiny CLIP config: a smoke test, its numbers mean nothing
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import criterion  # noqa: E402
import get_model  # noqa: E402
import runs  # noqa: E402
import train_args  # noqa: E402
from benchmarks import long_tail_counts  # noqa: E402
from methods.lift import MODULES  # noqa: E402
from optimisation import build_optimisation  # noqa: E402

IMAGENET_LT_TRAIN = 115_846
DEFAULT_MODULES, QUICK_MODULES = ("none", "adaptformer", "lora", "full"), ("none", "adaptformer")
# A 2-block ViT of width 64 on 32 x 32 images in 8 x 8 patches: what --quick builds instead of ViT-B/16.
TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2,
                                             "head_width": 32}}


def lift_settings(spec, module, batch, height, width):
    """A run's settings as ``1_train.py`` resolves them for the LIFT recipe of docs/recipes.md."""
    args = train_args.get_args_parser().parse_args([
        f"--model={spec}", "--method=lift", f"--lift_module={module}", "--objective=LA", "--lr=0.01",
        "--weight_decay=5e-4", "--epochs=10", "--schedule=cosine_each_epoch", "--augment=rrc_flip",
        f"--height={height}", f"--width={width}", f"--batchsize={batch}"])
    return train_args.resolve(vars(args))


def memory_mib(field):
    """``VmRSS`` (resident now) or ``VmHWM`` (the peak so far) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}: this benchmark reads Linux's process status")


def reset_peak():
    """Sets ``VmHWM`` to the present ``VmRSS`` (Linux 4.0 and later); where that is refused, the peak stays."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure_module(spec, module, classes, batch, warmup, steps, threads):
    """One module's trained parameters, median seconds per step and memory growth (MiB), in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    size = get_model.network(spec).exact_size  # imports open_clip before the baseline is read
    height, width = size if isinstance(size, tuple) else (size, size)
    settings = lift_settings(spec, module, batch, height, width)
    baseline = memory_mib("VmRSS")
    reset_peak()  # the imports' transient peak is not the network's
    model = runs.method_network(get_model.build_network(spec, classes), settings, classes).train()
    built = memory_mib("VmRSS")
    optimizer = build_optimisation(argparse.Namespace(**settings), model, 1)[0]
    loss_fn = criterion.get_criterion("LA", classes, long_tail_counts(1280, classes, 256), la_tau=1.0)
    images, labels = torch.randn(batch, 3, height, width), torch.randint(0, classes, (batch,))
    seconds = []
    for step in range(warmup + steps):
        started = time.perf_counter()
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            seconds.append(time.perf_counter() - started)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(module=module, size=[height, width], trained=trained, total=sum(p.numel() for p in model.parameters()),
                step_s=statistics.median(seconds), built_mib=built - baseline, peak_mib=memory_mib("VmHWM") - baseline)


def measure_in_fresh_process(args, spec, module):
    command = [sys.executable, str(Path(__file__).resolve()), "--model", spec, "--classes", str(args.classes),
               "--batch", str(args.batch), "--warmup", str(args.warmup), "--steps", str(args.steps),
               "--threads", str(args.threads), "--one", module]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {module}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(args, spec, rows):
    first = next(iter(rows.values()))
    height, width = first["size"]
    baseline = rows.get("none")
    print(f"LIFT training cost on the CPU: --model {spec} with random weights, {args.classes} classes, batch "
          f"{args.batch} at {height}x{width}, {args.threads} thread(s), float32; median of {args.steps} steps after "
          f"{args.warmup} warm-up, best of {args.rounds} round(s)")
    print(f"parameters of the network, frozen and trained: {first['total']:,} with --lift_module {first['module']}")
    header = (f"{'module':<12} {'trained':>12} {'s/step':>8} {'images/s':>9} {'vs none':>8} {'built MiB':>10} "
              f"{'peak MiB':>9} {'ImageNet-LT epoch*':>19}")
    print(header)
    print("-" * len(header))
    for module, row in rows.items():
        rate = args.batch / row["step_s"]
        ratio = f"{row['step_s'] / baseline['step_s']:.2f}x" if baseline else "-"
        print(f"{module:<12} {row['trained']:>12,} {row['step_s']:>8.3f} {rate:>9.2f} {ratio:>8} "
              f"{row['built_mib']:>10.0f} {row['peak_mib']:>9.0f} {IMAGENET_LT_TRAIN / rate / 3600:>17.1f} h")
    print(f"* extrapolated, not measured: {IMAGENET_LT_TRAIN:,} training images at the images/s above, "
          f"{args.threads} CPU thread(s) on this machine, data loading left out")
    print("built MiB: resident memory added by building the network; peak MiB: the process's peak resident memory "
          "while building it and training, above what it held before")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="clip:ViT-B-16.openai", help="a CLIP ViT spec (clip:NAME.TAG or "
                        "clip:CONFIG.json); built with random weights")
    parser.add_argument("--modules", nargs="+", choices=MODULES, help="--lift_module values to measure (default: "
                        f"{' '.join(DEFAULT_MODULES)}; with --quick: {' '.join(QUICK_MODULES)})")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the classifier (ImageNet-LT's 1000)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is kept)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of all modules (the fastest of each is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads")
    parser.add_argument("--quick", action="store_true", help="a tiny CLIP config: a smoke test, not a measurement")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure this module here and print it as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_module(args.model, args.one, args.classes, args.batch, args.warmup, args.steps,
                                        args.threads)))
        return
    with tempfile.TemporaryDirectory() as folder:
        spec = args.model
        if args.quick:
            config = Path(folder) / "tiny-clip.json"
            config.write_text(json.dumps(TINY_CLIP))
            spec, args.classes, args.batch, args.steps, args.rounds = f"clip:{config}", 10, 2, 1, 1
        args.modules = args.modules or (QUICK_MODULES if args.quick else DEFAULT_MODULES)
        measured = {module: [] for module in args.modules}
        for _ in range(args.rounds):  # the modules take turns: a slower spell of the machine hits each alike
            for module in args.modules:
                measured[module].append(measure_in_fresh_process(args, spec, module))
    rows = {module: dict(min(tries, key=lambda row: row["step_s"]), peak_mib=max(row["peak_mib"] for row in tries))
            for module, tries in measured.items()}
    print_table(args, "clip:tiny-clip.json" if args.quick else spec, rows)


if __name__ == "__main__":
    main()
