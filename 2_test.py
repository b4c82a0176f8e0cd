"""Evaluate the best checkpoint of a training run and draw its confusion matrix.

    python 2_test.py --dataset=digits-lt --model_index=41 --objective=CCE --datetime=2026-11-29-10-00-00
    python 2_test.py --dataset=digits-lt --model_index=41 --objective=CCE --datetime=latest

Writes ``<split>_metrics.json`` (with 95 % bootstrap intervals and the calibration
error), ``<split>_predictions.npz`` (per image: path, target, softmax), ``confusion_matrix.svg``
and ``reliability.svg`` into the run folder.  ``--posthoc_tau T|auto`` also reports
the predictions after post-hoc logit adjustment, ``--tau_norm T|auto`` after
tau-normalising the classifier.
"""
import functools
import math
import sys
import warnings

import numpy as np
import torch
from tqdm import tqdm

import figures
import methods
import stats
from b_models.heads import class_weight_norms, find_classifier
from get_model import chosen_model
from loader import BatchStream, load_splits
from methods import one_classifier
from runs import (CONFUSION_MATRIX, PER_CLASS, PRIOR_SHIFT, RELIABILITY, add_hparam_metrics, add_run_arguments, file_sha256, metrics_file, open_run,
                  predictions_file)
from runtime import Runtime
from utils import (ArgumentParser, UserError, atomic_write, number, positive, run_cli, seed_number,
                   write_json_atomic)

MAX_CONFUSION_CLASSES = 100  # beyond this a confusion matrix is a grey square: per_class.svg shows the classes
FULL_PROBABILITIES_BYTES = 256 * 2**20  # larger predictions keep each image's top TOP_K classes instead
TOP_K = 20


def get_args_parser():
    parser = ArgumentParser(description="Evaluate a trained run (see README.md).")
    add_run_arguments(parser)
    parser.add_argument("--split", choices=("test", "valid"), default=None,
                        help="split to evaluate (default: test, or valid when there is no test/)")
    parser.add_argument("--batchsize", type=positive(int), default=None, help="default: the run's")
    parser.add_argument("--height", type=positive(int), default=None, help="default: the run's")
    parser.add_argument("--width", type=positive(int), default=None, help="default: the run's")
    parser.add_argument("--data_dir", default="a_datasets")
    parser.add_argument("--logs_dir", default="logs")
    parser.add_argument("--posthoc_tau", default=None, metavar="T|auto",
                        help="also report predictions adjusted by -T*log(training class frequency) (Menon et al., "
                             "2021); auto: the T in 0..2 (step 0.1) with the best balanced accuracy on valid/")
    parser.add_argument("--tau_norm", default=None, metavar="T|auto",
                        help="also report the classifier tau-normalised (Kang et al., 2020, as their tau_norm.py "
                             "computes it): each class's weight vector divided by its norm to the power T, the bias "
                             "dropped; auto: the T in 0..2 (step 0.1) with the best balanced accuracy on valid/")
    parser.add_argument("--test_prior", default=None, metavar="uniform|forward-R|backward-R|all",
                        help="also report every metric as if the test classes came with this prior (importance "
                             "weights prior_k / empirical_k on the same images): uniform, forward-R (as long-tailed "
                             "as training, in its order, imbalance ratio R), backward-R (reversed); all: SADE's 11 "
                             "(forward 50 ... 2, uniform, backward 2 ... 50), and the figure prior_shift.svg")
    parser.add_argument("--resamples", type=positive(int), default=stats.RESAMPLES,
                        help="bootstrap resamples for the 95 %% intervals")
    parser.add_argument("--seed", type=seed_number, default=0, help="seed of the bootstrap")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best: the <acc>.pth chosen on valid/; last: last.pth, the final epoch")
    parser.add_argument("--tta", choices=("flip",), default=None,
                        help="flip: average the logits of each image and of its mirror image, as weight balancing's "
                             "published numbers do; written to <split>_flip_metrics.json and "
                             "<split>_flip_predictions.npz, beside the plain evaluation")
    parser.add_argument("--amp_eval", action="store_true",
                        help="CUDA: evaluate in mixed precision (default: float32, as published numbers are)")
    parser.add_argument("--cache_mb", type=number(float, 0), default=4096)
    parser.add_argument("--workers", type=number(int, 0), default=None)
    return parser


def choose_split(args, state):
    splits = load_splits(args.data_dir, args.dataset, ("valid", "test?"))
    if splits["train"].classes != list(state["classes"]):
        raise UserError(f"the classes of {args.data_dir}/{args.dataset} ({', '.join(splits['train'].classes)}) "
                        f"differ from the checkpoint's ({', '.join(state['classes'])})")
    name = args.split or "test"
    if name not in splits:
        if args.split == "test":
            raise UserError(f"{args.data_dir}/{args.dataset} has no test/ split")
        warnings.warn(f"{args.data_dir}/{args.dataset} has no test/ split; evaluating valid/ instead")
        name = "valid"
    return splits[name], splits


def per_class_table(targets, predictions, classes):
    scores = stats.per_class_scores(targets, predictions, len(classes))
    return [{"class": name, "support": int(n), "recall": 100 * float(r), "precision": 100 * float(p),
             "f1": 100 * float(f)}
            for name, n, r, p, f in zip(classes, scores["support"], scores["recall"], scores["precision"], scores["f1"])]


@torch.inference_mode()
def infer(model, stream, runtime, tta=None):
    """Logits (N x K, float32) and targets of a split, in the split's file order; with ``tta="flip"`` the mean of
    the logits of each image and of its mirror image (weight balancing's evaluation, ``eval_funcs.py`` L13-17,
    L51-56).  Post-hoc adjustment and tau-normalisation are linear in the logits, so they apply to the mean alike."""
    model.eval()
    logits, targets = [], []
    for images, labels in stream:
        with runtime.autocast(evaluation=True):
            output = model(images).float()
            if tta == "flip":
                output = (output + model(images.flip(3)).float()) / 2
            logits.append(output.cpu())
        targets.append(labels.cpu())
    return torch.cat(logits).numpy(), torch.cat(targets).numpy()


def softmax_rows(logits, rows=4096):
    """Softmax of each row (float64 arithmetic, float32 result) and its argmax, a block of rows at a time: at
    iNaturalist's 24,426 x 8,142 a float64 copy of the whole matrix alone would take 1.6 GB."""
    probabilities = np.empty(logits.shape, dtype=np.float32)
    predictions = np.empty(len(logits), dtype=np.int64)
    for start in range(0, len(logits), rows):
        block = torch.softmax(torch.as_tensor(logits[start:start + rows], dtype=torch.float64), dim=1)
        probabilities[start:start + rows] = block.numpy()
        predictions[start:start + rows] = block.argmax(dim=1).numpy()
    return probabilities, predictions


def summarise(logits, targets, classes, state, resamples, seed):
    """Every metric of one set of logits: top-1/5, balanced accuracy, macro-F1, shot groups, 95 % intervals, ECE."""
    probabilities, predictions = softmax_rows(logits)
    metrics = stats.classification_metrics(targets, predictions, len(classes), state.get("class_counts"),
                                           state["args"].get("many_shot", 100), state["args"].get("few_shot", 20))
    top5 = torch.as_tensor(logits).topk(min(5, len(classes)), dim=1).indices.numpy()
    intervals = stats.bootstrap_intervals(targets, predictions, resamples, seed)
    summary = {"acc": metrics["acc"], "acc_ci95": intervals["acc"],
               "top5acc": 100.0 * float(np.mean((top5 == targets[:, None]).any(axis=1))),
               "balanced_acc": metrics["balanced_acc"], "balanced_acc_ci95": intervals["balanced_acc"],
               "macro_f1": metrics["macro_f1"], "ece": stats.expected_calibration_error(probabilities, targets)}
    summary.update({key: metrics[key] for key in ("many_acc", "medium_acc", "few_acc") if key in metrics})
    return summary, predictions, probabilities


def main(args):
    run = open_run(args.logs_dir, chosen_model(args), args.dataset, args.objective, args.datetime, args.checkpoint)
    state = run.state
    split, splits = choose_split(args, state)
    for flag, value in (("--posthoc_tau", args.posthoc_tau), ("--tau_norm", args.tau_norm)):
        if value == "auto" and split.name == "valid":
            raise UserError(f"{flag} auto picks its value on valid/, so it cannot report valid/; give a number, "
                            "or evaluate a test/ split")
    tau = None if args.posthoc_tau in (None, "auto") else parse_tau(args.posthoc_tau)
    tau_norm = None if args.tau_norm in (None, "auto") else parse_tau(args.tau_norm, "--tau_norm")
    for flag, value in (("--posthoc_tau", args.posthoc_tau), ("--test_prior", args.test_prior)):
        if value is not None and not state.get("class_counts"):
            raise UserError(f"{run.checkpoint_path} records no training class counts, which {flag} needs")
    priors = shifted_priors(args.test_prior, state.get("class_counts"), split.labels)
    height, width = args.height or state["image_size"][0], args.width or state["image_size"][1]
    if [height, width] != list(state["image_size"]):
        raise UserError(f"--height/--width {height}x{width} differ from the {state['image_size'][0]}x"
                        f"{state['image_size'][1]} images {run.checkpoint_path.name} was trained on; its numbers at "
                        "another size would not describe the run (leave both flags out)")
    runtime = Runtime(amp_eval=args.amp_eval)
    classes = run.classes
    model = run.network(runtime)
    if args.tau_norm is not None:
        try:
            if state.get("lws"):
                raise ValueError("this run's classifier is scaled per class (LWS); tau-norm normalises a plain one")
            one_classifier(state["args"], "tau-norm normalises the class vectors of one classifier")
            classifier = find_classifier(model)[1]
            norms = class_weight_norms(classifier).cpu().numpy()
            bias = classifier.bias.detach().float().cpu().numpy() if getattr(classifier, "bias", None) is not None else None
        except (ValueError, UserError) as error:
            if args.tau_norm != "auto":
                raise UserError(f"--tau_norm: {error}") from None
            warnings.warn(f"--tau_norm auto: left out, {error}")  # a plan evaluates every row alike
            args.tau_norm = None

    def stream_of(chosen):
        stream = BatchStream(chosen, height, width, args.batchsize or state["args"]["batchsize"], train=False,
                             device=runtime.device, cache_mb=args.cache_mb, workers=args.workers,
                             channels_last=runtime.channels_last, eval_resize=state["args"].get("eval_resize"))
        stream.set_normalization(state["mean"], state["std"])
        return stream

    def logits_of(chosen):
        logits, targets = infer(model, stream_of(chosen), runtime, args.tta)
        assert np.array_equal(targets, chosen.labels), "predictions out of file order"
        return logits, targets

    @functools.cache
    def valid_logits():  # for the choices made on valid/ (computed once)
        valid, valid_targets = logits_of(splits["valid"])
        return valid * scale, valid_targets

    logits, targets = logits_of(split)
    scale = run.probability_scale()  # LDAM trains softmax(s * z)
    logits = logits * scale
    summary, predictions, probabilities = summarise(logits, targets, classes, state, args.resamples, args.seed)
    summary = {"split": split.name, "checkpoint": run.checkpoint_path.name, "epoch": state["epoch"],
               "images": len(targets), "image_size": [height, width], "tta": args.tta, **summary}
    adjusted_predictions = {}  # the classes predicted after each test-time adjustment, saved with the others
    if args.posthoc_tau is not None:
        chosen_on, valid_score = "given", None
        if tau is None:
            tau, chosen_on = stats.choose_tau(*valid_logits(), state["class_counts"]), "valid"
            valid, valid_targets = valid_logits()
            valid_score = stats.balanced_accuracy(valid_targets, stats.adjust_logits(valid, state["class_counts"],
                                                                                     tau).argmax(axis=1))
        adjusted = stats.adjust_logits(logits, state["class_counts"], tau)
        details, adjusted_predictions["posthoc"], _ = summarise(adjusted, targets, classes, state, args.resamples, args.seed)
        summary["posthoc"] = {"tau": tau, "tau_chosen_on": chosen_on, "valid_balanced_acc": valid_score, **details}
    if args.tau_norm is not None:
        chosen_on, valid_score = "given", None
        if tau_norm is None:
            tau_norm, chosen_on = stats.choose_tau_norm(*valid_logits(), norms, bias=bias), "valid"
            valid, valid_targets = valid_logits()
            valid_score = stats.balanced_accuracy(valid_targets, stats.tau_normalise(valid, norms, tau_norm,
                                                                                     bias).argmax(axis=1))
        normalised = stats.tau_normalise(logits, norms, tau_norm, bias)
        details, adjusted_predictions["tau_norm"], _ = summarise(normalised, targets, classes, state, args.resamples,
                                                                 args.seed)
        summary["tau_norm"] = {"tau": tau_norm, "tau_chosen_on": chosen_on, "valid_balanced_acc": valid_score, **details}
    method = methods.get(state["args"].get("method"))
    evaluations = method.evaluations(state["args"]) if method is not None and args.tta is None else {}
    for name, evaluation in evaluations.items():  # a method's own evaluations (SADE's test-time aggregation)
        learned_logits, learned = evaluation(model, stream_of(split), runtime, state["args"])
        details, adjusted_predictions[name], _ = summarise(learned_logits * scale, targets, classes, state,
                                                           args.resamples, args.seed)
        summary[name] = {**learned, **details}
    if priors:
        summary["test_priors"] = {name: {**stats.shifted_metrics(targets, probabilities, prior, state["class_counts"],
                                                                 *shot_limits(state)),
                                         **_shifted_posthoc(summary, logits, targets, prior, state)}
                                  for name, prior in priors.items()}
        learned_again = [(name, evaluation, prior_name, prior) for name, evaluation in evaluations.items()
                         for prior_name, prior in priors.items()]  # as on each prior's own test set: minutes each
        for name, evaluation, prior_name, prior in tqdm(learned_again, desc="learned again under each test prior",
                                                         unit="prior", disable=None, file=sys.stderr):
            learned_logits, learned = evaluation(model, stream_of(split), runtime, state["args"], prior)
            shifted, _ = softmax_rows(learned_logits * scale)
            summary["test_priors"][prior_name][name] = {**learned, **stats.shifted_metrics(
                targets, shifted, prior, state["class_counts"], *shot_limits(state))}
    table = per_class_table(targets, predictions, classes)
    report(summary, table, run.run_dir)
    evaluation = split.name if args.tta is None else f"{split.name}_{args.tta}"  # test_flip_*: beside the plain one
    write_results(run, split, targets, probabilities, {**summary, "per_class": table}, adjusted_predictions,
                  name=evaluation)
    if split.name == "test" and run.checkpoint == "best" and args.tta is None:
        record_test_hparams(run.run_dir, summary)
    title = f"{state['model_name']} / {args.dataset} / {args.objective} ({split.name}"
    written = [PER_CLASS, RELIABILITY]
    if len(classes) <= MAX_CONFUSION_CLASSES:
        figures.plot_confusion_matrix(targets, predictions, classes, run.run_dir / CONFUSION_MATRIX,
                              f"{title}, top-1 {summary['acc']:.2f} %)")
        written.insert(0, CONFUSION_MATRIX)
    else:
        print(f"(no {CONFUSION_MATRIX}: a matrix of {len(classes):,} classes is unreadable; {PER_CLASS} shows "
              "each class)")
    if state.get("class_counts"):
        figures.plot_per_class(table, state["class_counts"], run.run_dir / PER_CLASS, title + ")",
                       state["args"].get("many_shot", 100), state["args"].get("few_shot", 20))
    else:
        written.remove(PER_CLASS)
    figures.plot_reliability(probabilities.max(axis=1), probabilities.argmax(axis=1) == targets,
                             run.run_dir / RELIABILITY, title + ")")
    if len(priors) > 1:
        figures.plot_prior_shift({f"{args.objective} (this run)": summary["test_priors"]}, run.run_dir / PRIOR_SHIFT,
                               title + ")")
        written.append(PRIOR_SHIFT)
    print(f"wrote {metrics_file(evaluation, run.checkpoint)}, {predictions_file(evaluation, run.checkpoint)}, "
          f"{', '.join(written)} into {run.run_dir}")
    return 0


def record_test_hparams(run_dir, summary):
    """The test metrics beside the run's TensorBoard hyper-parameters (its HParams tab shows them per setting)."""
    from torch.utils.tensorboard import SummaryWriter

    try:
        writer = SummaryWriter(log_dir=str(run_dir))
        add_hparam_metrics(writer, {f"hparams/test_{key}": summary[key]
                                    for key in ("balanced_acc", "acc", "macro_f1", "ece")})
        writer.close()
    except OSError as error:  # the results are written; a missing TensorBoard record is not worth failing for
        warnings.warn(f"could not add the test metrics to {run_dir}'s TensorBoard record: {error}")


def shifted_priors(name, class_counts, targets):
    """``{name: class prior}`` of ``--test_prior`` (``all``: SADE's eleven), {} without it; a ``UserError``, before
    any evaluation, for a name that is none of them or a prior that puts mass on a class ``targets`` (the split's
    labels) has no image of (``stats.present_prior``)."""
    if name is None:
        return {}
    names = stats.SHIFTED_PRIORS if name == "all" else [name]
    try:
        priors = {each: stats.test_prior(each, class_counts) for each in names}
    except ValueError as error:
        raise UserError(f"--test_prior: {error}") from None
    for each, prior in priors.items():
        try:
            stats.present_prior(targets, prior)
        except ValueError as error:
            raise UserError(f"--test_prior {each}: {error}") from None
    return priors


def shot_limits(state):
    return state["args"].get("many_shot", 100), state["args"].get("few_shot", 20)


def _shifted_posthoc(summary, logits, targets, prior, state):
    """Post-hoc adjustment for a known test prior (Menon et al.): ``z - tau log(train prior) + tau log(test prior)``,
    with the tau chosen on (balanced) valid/ or given."""
    if "posthoc" not in summary:
        return {}
    tau = summary["posthoc"]["tau"]
    adjusted = stats.adjust_logits(logits, state["class_counts"], tau) + tau * np.log(prior).astype(np.float32)
    probabilities, _ = softmax_rows(adjusted)
    return {"posthoc": {"tau": tau, **stats.shifted_metrics(targets, probabilities, prior, state["class_counts"],
                                                            *shot_limits(state))}}


def write_results(run, split, targets, probabilities, metrics, adjusted_predictions=None, name=None):
    """``<split>_predictions.npz`` (per image: path relative to the dataset, target, probabilities, and the class
    predicted after each test-time adjustment, ``posthoc_predicted``, ``tau_norm_predicted``) and
    ``<split>_metrics.json`` (``<split>_last_...`` for ``last.pth``), each replaced atomically, the JSON last and
    holding the predictions file's SHA-256, so a kill between the two shows as a mismatch (``runs``)."""
    dataset_root = split.root.parent
    name = name or split.name
    predictions = run.run_dir / predictions_file(name, run.checkpoint)
    adjusted = {f"{kind}_predicted": classes.astype(np.int64) for kind, classes in (adjusted_predictions or {}).items()}
    with atomic_write(predictions, "wb") as file:
        np.savez_compressed(file, paths=np.array([str(p.relative_to(dataset_root)) for p in split.paths]),
                            targets=targets.astype(np.int64), classes=np.array(run.classes),
                            **kept_probabilities(probabilities, targets), **adjusted)
    metrics = {**metrics, "predictions_sha256": file_sha256(predictions)}
    write_json_atomic(metrics, run.run_dir / metrics_file(name, run.checkpoint))


def kept_probabilities(probabilities, targets):
    """What the predictions file keeps of the probabilities: all of them (``probs``, N x K float32) up to 256 MB,
    else each image's ``TOP_K`` most probable classes and their probabilities (``top_classes``, ``top_probs``)
    and the probability of its true class (``target_probs``): enough for every comparison compare.py makes
    (paired tests need the predicted class), in a few MB at iNaturalist's 8,142 classes, where all of them would
    take 795 MB.  Post-hoc adjustment, tau-normalisation and calibration are computed by 2_test.py from the full
    logits in memory."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.nbytes <= FULL_PROBABILITIES_BYTES:
        return {"probs": probabilities}
    top = torch.as_tensor(probabilities).topk(min(TOP_K, probabilities.shape[1]), dim=1)
    return {"top_classes": top.indices.numpy().astype(np.int32), "top_probs": top.values.numpy(),
            "target_probs": probabilities[np.arange(len(targets)), targets]}


MAX_TAU = 10.0


def parse_tau(text, flag="--posthoc_tau"):
    """A given ``--posthoc_tau`` or ``--tau_norm``: a finite number from 0 (no change) to 10 (far past any useful
    value); a negative one would favour the large classes further."""
    try:
        tau = float(text)
    except ValueError:
        raise UserError(f"{flag} takes a number or 'auto', got {text!r}") from None
    if not math.isfinite(tau) or not 0 <= tau <= MAX_TAU:
        reason = ("a negative value would favour the large classes further" if tau < 0 else
                  "not a finite number" if not math.isfinite(tau) else "far past any useful value")
        raise UserError(f"{flag} must be a number from 0 to {MAX_TAU:g} (or 'auto'), got {text}: {reason}")
    return tau + 0.0  # -0 is 0


def _interval(values):
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def report(summary, table, run_dir):
    print(f"run {run_dir}, checkpoint {summary['checkpoint']} (epoch {summary['epoch'] + 1}), "
          f"{summary['split']} split, {summary['images']} images")
    _print_metrics(summary)
    for key, title in (("posthoc", "post-hoc logit adjustment"), ("tau_norm", "tau-normalised classifier")):
        if key in summary:
            adjusted = summary[key]
            where = "chosen on valid/" if adjusted["tau_chosen_on"] == "valid" else "given"
            print(f"{title}, tau {adjusted['tau']:g} ({where}):")
            _print_metrics(adjusted, indent="  ")
    if "test_priors" in summary:
        print("under other test class priors (importance-weighted, same images): top-1 % [95 % interval over the images]"
              + ("; post-hoc for the known prior" if "posthoc" in summary else ""))
        for name, shifted in summary["test_priors"].items():
            extra = f"  post-hoc {shifted['posthoc']['acc']:.2f}" if "posthoc" in shifted else ""
            print(f"  {name:>12}  {shifted['acc']:6.2f} {_interval(shifted['acc_ci95'])}  macro-F1 "
                  f"{shifted['macro_f1']:.2f}{extra}")
    width = max(5, *(len(row["class"]) for row in table))
    print(f"{'class':<{width}} {'support':>8} {'recall':>8} {'precision':>10}")
    for row in table:
        print(f"{row['class']:<{width}} {row['support']:>8} {row['recall']:>8.2f} {row['precision']:>10.2f}")


def _print_metrics(summary, indent=""):
    print(f"{indent}top-1 {summary['acc']:.2f} % {_interval(summary['acc_ci95'])}  top-5 {summary['top5acc']:.2f} %  "
          f"balanced acc {summary['balanced_acc']:.2f} % {_interval(summary['balanced_acc_ci95'])}  "
          f"macro-F1 {summary['macro_f1']:.2f} %  ECE {summary['ece']:.2f} %   ([..]: 95 % bootstrap interval)")
    groups = [f"{key[:-4]} {summary[key]:.2f} %" for key in ("many_acc", "medium_acc", "few_acc")
              if key in summary and not np.isnan(summary[key])]
    if groups:
        print(f"{indent}shot groups (by train images): " + "  ".join(groups))


if __name__ == "__main__":
    sys.exit(run_cli(main, get_args_parser()))
