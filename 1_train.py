"""Train a CNN on an image-folder dataset with one of the objectives of criterion.py.

    python 1_train.py --dataset=digits-lt --model_index=41 --objective=CCE --warmup --ccegamma=1

Results go to a run folder logs/<Model>/<dataset>/<objective>/<YYYY-MM-DD-HH-MM-SS>/ (its files: runs.py and
logs/README.md).  Under ``torchrun --nproc_per_node=N`` it trains with DDP (runtime.py).
"""
import argparse
import itertools
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

import criterion
import methods
import second_stage
from b_models.heads import find_classifier, max_norm_radius, project_to_max_norm
from get_model import (architecture_config, build_network, check_input_size, chosen_model, load_matching,
                       load_run_weights, pretrained_normalisation)
from augment import Mixer, policy, scaled_pauses
from loader import BatchStream, load_splits, train_stats
from optimisation import build_optimisation, build_optimiser, sam_step
from runs import (LAST_CHECKPOINT, RESUME_KEYS, RunRecorder, checkpoint_normalisation, create_run_dir, file_sha256,
                  find_run_dir, load_run_checkpoint, method_network, model_folder, resolve_init, saved_arguments)
from runtime import Runtime, environment_record, exit_process
from stats import classification_metrics
from train_args import check, get_args_parser, warn_unread
from utils import UserError, WriteError, contained, run_cli

SYNC_EVERY = 20  # batches between reads of the on-device running metrics
SKIPPED_SHOWN = 8  # weights named when --pretrained skips some (a CLIP file: its text tower's dozens)


def check_args(args):
    """The flags checked and their dependent defaults filled (``train_args.check``), the run ``--init_from`` names
    found (``runs.resolve_init``), the warnings about flags the run does not read, and the seed drawn when not
    given; raises ``UserError``."""
    check(args)
    if args.init_from:
        args.init_from = str(resolve_init(args))
    warn_unread(args)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    return args


# ---------------------------------------------------------------- one epoch

def topk_hits(logits, labels):
    """Per-sample top-1 and top-5 hits (top-k over min(5, K) classes)."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return hits[:, 0], hits.any(dim=1)


@dataclass
class Training:
    """What a training step needs, built once per run."""
    model: torch.nn.Module
    loss_fn: torch.nn.Module
    complement: Optional[torch.nn.Module]  # COT's second step, with an optimiser and schedule of its own
    complement_optimiser: Optional[torch.optim.Optimizer]
    complement_scheduler: Optional[torch.optim.lr_scheduler.LambdaLR]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    args: argparse.Namespace
    runtime: Runtime
    mixer: Optional[Mixer] = None  # --mix
    method: Optional[methods.Method] = None  # --method (methods/), with its partner batches if it asks for them
    partner: Optional[BatchStream] = None
    minority: Optional[BatchStream] = None  # CMO's stream of pasted images
    head: Optional[torch.nn.Module] = None  # the classifier, projected by --maxnorm
    max_norm: float = 0.0  # its radius


def train_one_epoch(training, stream, epoch):
    """One pass over the training split; returns loss, acc, top5acc (percent) and the last lr."""
    t, args, runtime = training, training.args, training.runtime
    t.model.train(args.bn_stats != "frozen")  # frozen: a trained backbone's batch-norm statistics stay as they are
    totals = torch.zeros(3, device=runtime.device, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits
    count = 0
    first_bad = torch.full((), -1, device=runtime.device)
    lr = t.optimizer.param_groups[0]["lr"]
    progress = tqdm(total=len(stream), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False,
                    disable=None if runtime.is_main else True, file=sys.stderr)
    mixing = t.mixer is not None and t.mixer.active
    pasted = iter(t.minority) if t.minority is not None and mixing else itertools.repeat(None)
    partners = iter(t.partner) if t.partner is not None else itertools.repeat(None)
    heads = list(t.method.heads.parameters()) if t.method is not None else []
    for batch, ((images, labels), minority, partner) in enumerate(zip(stream, pasted, partners)):
        mixed = t.mixer(images, labels, minority) if t.mixer is not None else None
        if mixed is not None:
            images, labels = mixed.images, mixed.targets_a
        outputs = []

        def compute_loss():
            with runtime.autocast():
                if t.method is not None:  # a method (methods/): its own loss, logits and the labels they score
                    loss, logits, scored = t.method.loss(t.model, images, labels, t.loss_fn, epoch, partner)
                    outputs.append((logits, scored))
                    return loss
                logits = t.model(images)
                if mixed is None:
                    loss = t.loss_fn(logits, labels)
                else:  # lam * L(y_a) + (1 - lam) * L(y_b), per image
                    loss = t.loss_fn(logits, mixed.targets_a, mixed.lam) + t.loss_fn(logits, mixed.targets_b, 1 - mixed.lam)
            outputs.append((logits, labels))
            return loss

        if args.sam_rho:
            loss = sam_step(t.model.parameters(), compute_loss, t.optimizer, t.scaler, args.sam_rho, t.model,
                            keep_statistics=args.sam_bn_stats == "first")
        else:
            loss = compute_loss()
            _step(loss, t.optimizer, t.scaler, lambda: runtime.average_gradients(heads))
        if t.complement is not None:  # COT: a second step that flattens the incorrect classes
            with runtime.autocast():
                _step(t.complement(t.model(images), labels), t.complement_optimiser, t.scaler)
            t.complement_scheduler.step()
        if t.head is not None and args.maxnorm_every == "step":
            project_to_max_norm(t.head, t.max_norm)
        lr = t.optimizer.param_groups[0]["lr"]
        t.scheduler.step()
        with torch.no_grad():
            logits, scored = outputs[0]
            top1, top5 = topk_hits(logits.detach(), scored)
            totals += torch.stack([loss.detach().double() * len(scored), top1.sum().double(), top5.sum().double()])
            count += len(scored)
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), batch, first_bad)
        if (batch + 1) % SYNC_EVERY == 0 or batch + 1 == len(stream):
            _check_finite(runtime.all_max(first_bad.clone()), epoch)  # every process stops, or none
            loss_sum, correct, _ = totals.tolist()
            progress.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{100 * correct / count:.2f}")
        progress.update()
    progress.close()
    if t.head is not None and args.maxnorm_every == "epoch":  # after the epoch's last step, as Alshammari et al.
        project_to_max_norm(t.head, t.max_norm)
    totals = torch.cat([totals, torch.tensor([count], device=runtime.device, dtype=torch.float64)])
    loss_sum, correct, correct5, count = runtime.all_sum(totals).tolist()
    return {"loss": loss_sum / count, "acc": round(100 * correct / count, 4),
            "top5acc": round(100 * correct5 / count, 4), "lr": lr}


def _step(loss, optimizer, scaler, before_step=None):
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if before_step is not None:
        before_step()
    scaler.step(optimizer)
    scaler.update()


def _check_finite(first_bad, epoch):
    bad = int(first_bad)
    if bad >= 0:
        raise UserError(f"the loss became non-finite (nan or inf) at epoch {epoch + 1}, batch {bad + 1}; "
                        "the best checkpoint so far is kept; lower --lr or check the data")


@torch.inference_mode()
def evaluate(model, criterion, stream, runtime):
    """Loss and top-5 hits plus every prediction of a split, gathered over all processes."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device, dtype=torch.float64)
    predictions, top5_hits, targets = [], [], []
    for images, labels in stream:
        with runtime.autocast(evaluation=True):
            logits = model(images)
        loss_sum += criterion(logits, labels).double() * len(labels)
        _, top5 = topk_hits(logits, labels)
        predictions.append(logits.argmax(dim=1))
        top5_hits.append(top5)
        targets.append(labels)
    empty = torch.zeros(0, dtype=torch.long)  # a process can get no validation image when there are few
    local = (float(loss_sum), *(torch.cat(parts).cpu() if parts else empty for parts in (predictions, top5_hits, targets)))
    gathered = runtime.gather(local)
    predictions = torch.cat([part[1] for part in gathered]).numpy()
    targets = torch.cat([part[3] for part in gathered]).numpy()
    top5 = torch.cat([part[2] for part in gathered])
    return {"loss": sum(part[0] for part in gathered) / len(targets),
            "top5acc": round(100 * float(top5.double().mean()), 4),
            "predictions": predictions, "targets": targets}


# ---------------------------------------------------------------- setting up

def build_model(args, num_classes, runtime, init=None, resumed=None):
    """The network, its weights (random, pretrained, or ``init``: the checkpoint of ``--init_from``), its head and
    what trains; checks the image size before anything is decoded."""
    torch.manual_seed(args.seed)
    fresh = not args.resume  # a resumed run has its weights in last.pth
    pretrained = args.pretrained if fresh else None
    try:
        source = resumed or init or {}  # a resumed run, or the run it starts from, has its own input transform
        model = build_network(chosen_model(args), num_classes, args.normed_head, head_scale(args),
                              pretrained="imagenet" if pretrained == "imagenet" else None,
                              transform_input=source.get("transform_input"), config=source.get("model_config"))
        model = method_network(model, vars(args), num_classes)
        if pretrained not in (None, "imagenet"):
            skipped = load_matching(model, pretrained)
            if skipped and runtime.is_main:
                shown = ", ".join(skipped[:SKIPPED_SHOWN]) + (f" and {len(skipped) - SKIPPED_SHOWN} more"
                                                               if len(skipped) > SKIPPED_SHOWN else "")
                print(f"--pretrained {pretrained}: skipped {len(skipped)} weight(s) that do not fit: {shown}",
                      flush=True)
        if init is not None and fresh:
            load_run_weights(model, init["model"], keep_classifier=not args.reinit_head)
            if args.reinit_head:
                find_classifier(model)[1].reset_parameters()
        second_stage.set_trainable(model, args, num_classes)  # LWS's scales; what a second stage freezes
        check_input_size(model, args.height, args.width, chosen_model(args), source.get("model_config"))
    except ValueError as error:
        raise UserError(str(error)) from None
    model = runtime.prepare(model)
    if runtime.distributed and args.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, model_folder(chosen_model(args))


def pauses(args):
    """The Mixer's epochs without mixing, at the start and the end, as the flags set them (``scaled_pauses``)."""
    first, last = scaled_pauses(args.mix_off_first, args.mix_off_last, args.epochs, args.mix_off_reference)
    return {"off_first": first, "off_last": last}


def build_method(args, model, num_classes, class_counts, runtime):
    """The method of ``--method`` (``methods/``), its heads on the training device."""
    method = methods.get(args.method)(model, num_classes, class_counts, args, seed=args.seed + runtime.rank)
    method.heads.to(runtime.device)
    return method


def load_init(args, classes):
    """The checkpoint ``--init_from`` resolved to, checked against this run's classes."""
    init = load_run_checkpoint(args.init_from)
    methods.one_classifier(init.get("args", {}), f"--init_from {args.init_from}: a second stage trains or re-uses "
                           "one classifier")
    if list(init["classes"]) != list(classes):
        raise UserError(f"--init_from {args.init_from} was trained on the classes {', '.join(init['classes'])}, "
                        f"not {', '.join(classes)}")
    if list(init["image_size"]) != [args.height, args.width]:
        raise UserError(f"--init_from {args.init_from} was trained on {init['image_size'][0]}x{init['image_size'][1]} "
                        f"images, not {args.height}x{args.width}: a second stage keeps its first stage's image size "
                        "(give the same --height and --width)")
    return init


def head_scale(args):
    """Factor on the cosine logits of a normed head: 1 for an objective that scales its logits itself (LDAM)."""
    return 1.0 if criterion.get_objective(args.objective).logit_scale else args.normed_scale


def build_streams(args, runtime, splits, normalisation=None):
    common = dict(device=runtime.device, seed=args.seed, cache_mb=args.cache_mb, workers=args.workers,
                  skip_bad_images=args.skip_bad_images, disk_cache=args.disk_cache, rank=runtime.rank,
                  bad_image_hint="delete or replace it, or pass --skip_bad_images", eval_resize=args.eval_resize,
                  world_size=runtime.world_size, channels_last=runtime.channels_last, progress=runtime.is_main)
    train = BatchStream(splits["train"], args.height, args.width, args.batchsize, train=True,
                        augment=args.augment, sampler=args.sampler, cutout=args.cutout, flip=args.flip, **common)
    valid = BatchStream(splits["valid"], args.height, args.width, args.batchsize, train=False, **common)
    if normalisation is not None:  # a resumed run's, or those the network it starts from was trained with
        mean, std = map(list, normalisation)
    elif args.pretrained:  # the statistics the pretrained weights were trained with (a run's own, in its checkpoint)
        mean, std = map(list, checkpoint_normalisation(args.pretrained) or pretrained_normalisation(chosen_model(args)))
    else:
        mean, std = train_stats(train, args.height, args.width)
    for stream in (train, valid):
        stream.set_normalization(mean, std)
    fill = [255 * value for value in mean] if args.policy_fill == "mean" else None
    train.set_policy(policy(args.augment, fill, args.randaugment_ops, args.randaugment_magnitude))
    return train, valid, mean, std


def build_criterion(args, num_classes, class_counts):
    """The objective's loss and, for objectives with a complement step (COT), that step's loss."""
    objective = criterion.get_objective(args.objective)
    options = {name: getattr(args, name) for name in objective.options}
    loss = criterion.get_criterion(args.objective, num_classes, class_counts, **options)
    complement = criterion.ComplementEntropy(num_classes) if objective.complement_step else None
    return loss, complement


def resolve_resume(args):
    """Replace ``args`` by the saved arguments of the run to resume; return (args, run_dir, state)."""
    requested_epochs = args.epochs
    if args.resume == "latest":
        if chosen_model(args) is None or args.dataset is None:
            raise UserError("--resume latest needs --model_index (or --model), --dataset and --objective to find the "
                            "run")
        check_args(args)
        run_dir = find_run_dir(args.logs_dir, model_folder(chosen_model(args)), args.dataset, args.objective, "latest")
    else:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise UserError(f"--resume: {run_dir} is not a run folder")
        if len(run_dir.parts) > 4:  # logs/<Model>/<dataset>/<objective>/<time>: no link on the way leads out
            contained(run_dir.parents[3], run_dir, "--resume")
    last = run_dir / LAST_CHECKPOINT
    if not last.is_file():
        raise UserError(f"{run_dir} has no {LAST_CHECKPOINT} to resume from (it stopped before its first epoch "
                        "ended); start a new run instead")
    state = load_run_checkpoint(last, required=RESUME_KEYS)
    saved = saved_arguments(state)
    saved.resume = str(run_dir)
    if requested_epochs is not None:
        saved.epochs = requested_epochs
    return saved, run_dir, state


def main(args):
    runtime = Runtime(getattr(args, "no_amp", False))
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return train(args, runtime)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        runtime.close()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def train(args, runtime):
    state, run_dir = None, None
    if args.resume:
        args, run_dir, state = resolve_resume(args)
    else:
        check_args(args)
        args.seed = runtime.broadcast(args.seed)  # a drawn seed must be the same on every process
    runtime.amp_eval = getattr(args, "amp_eval", False)  # a resumed run validates as it did
    splits = load_splits(args.data_dir, args.dataset, ("train", "valid", "test?"))  # test/ checked now, not after
    classes = splits["train"].classes
    if state is not None and list(state["classes"]) != classes:
        raise UserError(f"the classes of {args.data_dir}/{args.dataset} ({', '.join(classes)}) differ from those of "
                        f"the run to resume ({', '.join(state['classes'])})")
    init = load_init(args, classes) if args.init_from and state is None else None
    model, model_name = build_model(args, len(classes), runtime, init, state)  # checks the image size first
    source = state if state is not None else init
    train_stream, valid_stream, mean, std = build_streams(
        args, runtime, splits, (source["mean"], source["std"]) if source is not None else None)
    loss_fn, complement = build_criterion(args, len(classes), train_stream.class_counts)
    loss_fn.to(runtime.device)
    raw_model = model
    if runtime.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[runtime.device] if runtime.device.type == "cuda" else None)
    if args.compile:
        model = torch.compile(model)
    method = build_method(args, raw_model, len(classes), train_stream.class_counts, runtime) if args.method else None
    partner = None
    if method is not None:
        train_stream.set_views(method.views)
        if method.partner is not None:  # partner batches (GLMC's), drawn with per-image weights n_k^-q
            partner = train_stream.with_sampler(getattr(args, method.partner), args.seed + 2)
    groups = second_stage.parameter_groups(args, raw_model, method.heads if method is not None else None)
    optimizer, scheduler, scaler = build_optimisation(args, model, len(train_stream), runtime.amp_dtype, groups)
    second = build_optimiser(args, model, len(train_stream)) if complement is not None else (None, None)
    head = find_classifier(raw_model)[1] if args.maxnorm else None
    if head is not None:  # a resumed run keeps the radius it started with
        radius = state["maxnorm_radius"] if state is not None and "maxnorm_radius" in state else max_norm_radius(
            head, args.maxnorm, relative=args.maxnorm_threshold == "relative")
    training = Training(model, loss_fn, complement, *second, optimizer, scheduler, scaler, args, runtime,
                        mixer=Mixer(args.mix, train_stream.class_counts, args.mix_alpha, args.mix_prob, args.remix_kappa,
                                    args.remix_tau, seed=args.seed * 7 + runtime.rank, epochs=args.epochs,
                                    **pauses(args)) if args.mix else None,
                        minority=train_stream.with_sampler(args.cmo_alpha, args.seed + 1) if args.mix == "cmo" else None,
                        head=head, max_norm=radius if head is not None else 0.0, method=method, partner=partner)
    start_epoch, best = 0, None
    if state is not None:
        start_epoch, best = restore(state, raw_model, optimizer, scheduler, scaler, *second)
        if method is not None:
            method.heads.load_state_dict(state["method_heads"])
        if start_epoch >= args.epochs:
            raise UserError(f"{run_dir} already finished all {args.epochs} epochs; pass a larger --epochs to extend it")
    else:
        if method is not None:
            method.start(raw_model, classes, args, train_stream)
        run_dir = _create_run_dir(args, model_name, runtime)
    recorder = None
    if runtime.is_main:
        about = {"classes": list(classes), "class_counts": train_stream.class_counts, "image_size": [args.height, args.width],
                 "mean": list(mean), "std": list(std), "model_index": args.model_index, "model_name": model_name,
                 "normed_head": bool(args.normed_head), "head_scale": head_scale(args), "lws": bool(args.lws),
                 "transform_input": getattr(raw_model, "transform_input", None), "model_spec": args.model,
                 "model_config": architecture_config(raw_model),
                 "objective": args.objective, "args": vars(args), "environment": environment_record(runtime.device)}
        if init is not None:  # where this run started
            about["init_from"] = {"checkpoint": args.init_from, "epoch": init["epoch"], "valid_acc": init["acc"]}
        elif state is not None and "init_from" in state:  # a resumed second stage keeps the record
            about["init_from"] = state["init_from"]
        if head is not None:
            about["maxnorm_radius"] = training.max_norm
        if state is None and args.pretrained not in (None, "imagenet"):  # which file, should one replace it later
            about["pretrained_sha256"] = file_sha256(args.pretrained)
        recorder = RunRecorder(run_dir, about, start_epoch, best)
        print(f"{'resuming' if state else 'training'} {model_name} on {args.dataset} ({len(classes)} classes, "
              f"{train_stream.num_samples} train / {valid_stream.num_samples} valid images) with {args.objective} "
              f"on {runtime.device}{f' x{runtime.world_size}' if runtime.distributed else ''}; run folder {run_dir}",
              flush=True)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, args.epochs):
            torch.manual_seed(args.seed * 1_000_003 + epoch * 101 + runtime.rank)
            for changing in (train_stream, training.minority, training.mixer, loss_fn, method, partner):
                if hasattr(changing, "set_epoch"):  # batches, crops, mixing, and a loss that changes (DRW)
                    changing.set_epoch(epoch)
            started = time.perf_counter()
            train_row = train_one_epoch(training, train_stream, epoch)
            valid = evaluate(model, loss_fn, valid_stream, runtime)
            train_row["time_s"] = round(time.perf_counter() - started, 3)
            if recorder is not None:
                valid.update(classification_metrics(valid["targets"], valid["predictions"], len(classes),
                                                    train_stream.class_counts, args.many_shot, args.few_shot))
                valid.update(acc=round(valid["acc"], 4), images=len(valid["targets"]), lr=train_row["lr"])
                recorder.record(epoch, train_row, valid, raw_model, {
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), **({} if second[0] is None else {
                        "complement_optimizer": second[0].state_dict(), "complement_scheduler": second[1].state_dict()}),
                    **({} if method is None else {"method_heads": method.heads.state_dict()})})
                print(f"epoch {epoch + 1}/{args.epochs}  train loss {train_row['loss']:.4f} acc {train_row['acc']:.2f}"
                      f"  valid loss {valid['loss']:.4f} acc {valid['acc']:.2f} balanced {valid['balanced_acc']:.2f}"
                      f"  lr {train_row['lr']:.3g}", flush=True)
        if recorder is not None:
            recorder.finish(args.epochs)
    except KeyboardInterrupt:
        if runtime.is_main:
            print(f"error: interrupted during epoch {epoch + 1}; the files in {run_dir} are complete up to the last "
                  f"finished epoch; continue with: python 1_train.py --resume {run_dir}", file=sys.stderr)
        return 130
    except WriteError as error:  # a full disk: every file was replaced atomically, so the last epoch's are whole
        if not (run_dir / LAST_CHECKPOINT).is_file():
            raise UserError(f"{error} during epoch {epoch + 1}, before anything could be saved; free some space and "
                            f"start the run again (and delete {run_dir})") from None
        raise UserError(f"{error} during epoch {epoch + 1}; the files in {run_dir} are complete up to the last "
                        f"finished epoch: free some space and continue with: python 1_train.py --resume {run_dir}") from None
    finally:
        if recorder is not None:
            recorder.close()
    runtime.barrier()  # no process tears down the group while rank 0 still writes
    if recorder is not None:
        print(f"done: best valid acc {recorder.best_acc:.2f} at epoch {recorder.best_epoch + 1}; checkpoint "
              f"{recorder.best_path}; evaluate with: python 2_test.py "
              f"{f'--model={args.model}' if args.model else f'--model_index={args.model_index}'} "
              f"--dataset={args.dataset} --objective={args.objective} --datetime={run_dir.name}", flush=True)
    return 0


def restore(state, model, optimizer, scheduler, scaler, complement_optimiser=None, complement_scheduler=None):
    """Load a ``last.pth``; returns the next epoch and (best acc, best epoch, best file name)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if complement_optimiser is not None:
        if "complement_optimizer" not in state:
            raise UserError("this COT run was saved before COT's complement step had an optimiser of its own; it "
                            "cannot continue exactly: start it again")
        complement_optimiser.load_state_dict(state["complement_optimizer"])
        complement_scheduler.load_state_dict(state["complement_scheduler"])
    return state["epoch"] + 1, (state["best_acc"], state["best_epoch"], state["best_file"])


def _create_run_dir(args, model_name, runtime):
    """Rank 0 creates the folder; every rank learns its path (or the error)."""
    result = None
    if runtime.is_main:
        try:
            result = create_run_dir(args.logs_dir, model_name, args.dataset, args.objective)
        except UserError as error:
            result = error
    result = runtime.broadcast(str(result) if isinstance(result, Path) else result)
    if isinstance(result, UserError):
        raise result
    return Path(result)


if __name__ == "__main__":
    exit_process(run_cli(main, get_args_parser()))
