"""LIFT's own code (Shi et al., ICML 2024; shijxcs/LIFT at 661ead9) beside this project's ``--method lift`` on one
small CLIP with random weights, for each module both offer: the same batch gives the same logits at the start, the
same loss, and the same trainable parameters after one SGD step.

Their files are not changed.  Their ``Trainer`` is built without its ``__init__`` (which would read their datasets
and download OpenAI's weights): its configuration is their ``utils/config.py`` defaults merged with their
``configs/model/clip_vit_b16.yaml`` and the module's switch, its class names and counts are this script's, and their
``trainer.load_clip_to_cpu`` is replaced by one that hands their ``clip.build_model`` the saved state dict (where
their code loads weights).  Their ``build_model`` then builds ``PeftModelFromCLIP``, freezes the backbone, builds
their SGD over the tuner and the head, their ``LogitAdjustedLoss`` and initialises the head from the text features
(``init_head_text_feat``), as in a run of theirs.  One step is their training loop's fp32 branch (trainer.py
L463-469: forward, criterion, backward, ``optim.step``).

This project's side is its own code path: ``get_model.build_network`` of the same config, ``runs.method_network``,
``get_model.load_matching`` of the same file, ``Lift.start`` (the text-initialised classifier), the run's objective
(``criterion.get_criterion("LA")``) and ``optimisation.build_optimisation`` with LIFT's values.  The modules' random
starting values (AdaptFormer's down-projection, LoRA's A, the prompts, SSF's scales) are copied from theirs, so the
comparison is of the computation.

The CLIP is OpenAI's architecture (QuickGELU, one head per 64 channels, as their ``build_model`` infers it): a
2-block ViT of width 64 on 32 x 32 images in 8 x 8 patches, a 1-block text tower of width 64 with OpenAI's
vocabulary and 77 tokens (their ``clip.tokenize`` pads to 77).

    git clone https://github.com/shijxcs/LIFT LIFT && git -C LIFT checkout 661ead9
    pip install --no-deps --target LIFT-deps yacs tensorboard
    PYTHONPATH=LIFT-deps python bench/authors/lift.py --code LIFT --out results/authors/lift/side-by-side.json

prints one row per module and writes them to ``--out`` (what ``tables.py`` reads).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder, also when loaded from its file
import atomic_json  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
CONFIG = {"embed_dim": 32, "quick_gelu": True,
          "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 64},
          "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
CLASSES = ["T-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
COUNTS = [500, 300, 180, 110, 65, 40, 24, 15, 9, 5]
# This project's --lift_module: their configuration switches (utils/config.py L34-45).
MODULES = {"adaptformer": {"adaptformer": True}, "adapter": {"adapter": True}, "lora": {"lora": True},
           "vpt_shallow": {"vpt_shallow": True}, "vpt_deep": {"vpt_deep": True}, "bitfit": {"bias_tuning": True},
           "ln": {"ln_tuning": True}, "ssf": {"ssf_attn": True, "ssf_mlp": True, "ssf_ln": True},
           "full": {"full_tuning": True}, "none": {}}
THEIR_PACKAGES = ("trainer", "utils", "models", "datasets", "clip")  # their top-level names (the clone's root)
# Their tuner's lists (models/peft_vit.py L240-252) and this project's tuner entries.
TUNER_NAMES = {"adaptformer_list": "adaptformer", "adapter_list": "adapter", "lora_list": "lora",
               "vpt_list": None, "ssf_attn_list": "ssf", "ssf_mlp_list": "ssf", "ssf_ln_list": "ssf"}


def their_trainer(code, weights, module):
    """Their ``Trainer`` after ``build_model``: model, tuner, head, optimiser and criterion as a run of theirs has."""
    sys.path.insert(0, str(code))
    os.chdir(code)  # their config files are read by relative path
    import trainer as their
    from clip import clip as their_clip
    from utils.config import _C

    cfg = _C.clone()
    cfg.merge_from_file("configs/model/clip_vit_b16.yaml")
    cfg.merge_from_list(["prec", "fp32", *[str(v) for key, on in MODULES[module].items() for v in (key, on)]])
    their.load_clip_to_cpu = lambda backbone, prec: their_clip.build_model(
        torch.load(weights, map_location="cpu", weights_only=True)).float()
    trainer = their.Trainer.__new__(their.Trainer)
    trainer.cfg, trainer.device = cfg, torch.device("cpu")
    trainer.classnames, trainer.num_classes, trainer.cls_num_list = CLASSES, len(CLASSES), COUNTS
    trainer.build_model()
    # Their top-level packages (utils, models, datasets, clip) shadow this project's modules of the same names: the
    # objects built keep theirs, and the names go back to this project.
    for name in [name for name in sys.modules if name.split(".")[0] in THEIR_PACKAGES]:
        del sys.modules[name]
    sys.path.remove(str(code))
    os.chdir(PROJECT)
    return trainer, their_clip


def project_network(config_path, weights, module, their_tuner):
    """This project's LIFT network, text-initialised from the same file, its module's starting values theirs."""
    sys.path.insert(0, str(PROJECT))
    import get_model
    import runs
    import train_args
    from methods.lift import Lift

    args = train_args.get_args_parser().parse_args([
        "--model", f"clip:{config_path}", "--pretrained", str(weights), "--dataset", "side", "--method", "lift",
        "--lift_module", module, "--objective", "LA", "--lr", "0.01", "--weight_decay", "5e-4", "--epochs", "10",
        "--schedule", "cosine_each_epoch", "--height", "32", "--width", "32"])
    vars(args).update(train_args.resolve(vars(args)))
    model = get_model.build_network(args.model, len(CLASSES))
    model = runs.method_network(model, vars(args), len(CLASSES))
    get_model.load_matching(model, weights)
    Lift(model, len(CLASSES), COUNTS, args).start(model, CLASSES, args, None)
    with torch.no_grad():
        own = dict(model.named_parameters())
        for name, value in their_tuner.state_dict().items():
            mapped = project_name(name, module)
            if mapped is not None and mapped in own:
                own[mapped].copy_(value)
    return model, args


def project_name(their_name, module):
    """The project's parameter of one of their tuner's entries (``adaptformer_list.0.ln.weight`` ->
    ``tuner.adaptformer.0.ln.weight``); None for what lives in the backbone (their bias, LN and block lists)."""
    head, layer, *rest = their_name.split(".")
    if head not in TUNER_NAMES:
        return None
    kind = TUNER_NAMES[head] or module
    return ".".join(["tuner", kind, layer, *rest])


def compare(code, folder, module):
    config_path, weights = folder / "clip.json", folder / "clip.pth"
    torch.manual_seed(0)  # their modules' random starting values (copied into this project's), the same every time
    trainer, their_clip = their_trainer(code, weights, module)
    model, args = project_network(config_path, weights, module, trainer.tuner)
    import criterion
    import open_clip
    from optimisation import build_optimisation

    from methods.lift import prompts

    theirs_prompts = [f"a photo of a {name.replace('_', ' ')}." for name in CLASSES]  # their trainer.py:306, :344
    ours_tokenised = open_clip.tokenizer.SimpleTokenizer(context_length=77)(prompts(CLASSES))
    same_tokens = torch.equal(their_clip.tokenize(theirs_prompts), ours_tokenised)
    torch.manual_seed(5)
    images, labels = torch.randn(16, 3, 32, 32), torch.arange(16) % len(CLASSES)
    theirs, ours = trainer.model, model
    ours.train()
    trainer.tuner.train()
    their_trained = {name: p for name, p in theirs.named_parameters() if p.requires_grad}
    our_trained = {name: p for name, p in ours.named_parameters() if p.requires_grad}
    mapped = {name: mapped_name(name, module) for name in their_trained}
    pairs = [(p, our_trained[mapped[name]]) for name, p in their_trained.items() if mapped[name] in our_trained]
    before = [a.detach().clone() for a, _ in pairs]
    starts = max(float((a - b).abs().max()) for a, b in pairs)
    their_logits, our_logits = theirs(images), ours(images)
    their_loss = trainer.criterion(their_logits, labels)
    our_loss = criterion.get_criterion("LA", len(CLASSES), COUNTS, la_tau=1.0)(our_logits, labels)
    optimizer = build_optimisation(args, ours, 1)[0]
    their_loss.backward()
    trainer.optim.step()
    optimizer.zero_grad()
    our_loss.backward()
    optimizer.step()
    return {"module": module, "same_tokens": same_tokens, "start": starts,
            "logits_at_start": float((their_logits - our_logits).abs().max()),
            "loss": [float(their_loss), float(our_loss)],
            "trained_parameters": [sum(p.numel() for p in their_trained.values()),
                                   sum(p.numel() for p in our_trained.values())],
            "unmatched": sorted(set(our_trained) - set(mapped.values())),  # trained here only
            "theirs_only": sorted(name for name in their_trained if mapped[name] not in our_trained),
            "step": max(float((a.detach() - b).abs().max()) for (a, _), b in zip(pairs, before)),
            "after_one_step": max(float((a - b).abs().max()) for a, b in pairs)}


def mapped_name(their_name, module):
    """The project's name of one of their model's trained parameters."""
    if their_name.startswith("tuner."):
        rest = their_name.removeprefix("tuner.")
        head = rest.split(".")[0]
        if head in TUNER_NAMES:
            return project_name(rest, module)
    for theirs, ours in (("head.", "head."), ("image_encoder.blocks.", "visual.transformer.resblocks."),
                         ("tuner.block_tuned.", "visual.transformer.resblocks.")):
        if their_name.startswith(theirs):
            return ours + their_name.removeprefix(theirs)
    raise KeyError(their_name)


def save_clip(path):
    """A random CLIP of ``CONFIG``, its values rounded to float16 as OpenAI's published weights are (their
    ``clip.build_model`` rounds every weight to float16 before ``load_clip_to_cpu`` makes it float32 again)."""
    import open_clip

    torch.manual_seed(0)
    state = open_clip.CLIP(**CONFIG).state_dict()
    torch.save({name: value.half().float() for name, value in state.items()}, path)


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, required=True, help="their clone (shijxcs/LIFT at 661ead9)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the rows")
    parser.add_argument("--modules", nargs="+", default=list(MODULES), choices=list(MODULES))
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    code = args.code.resolve()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "clip.json").write_text(json.dumps(CONFIG))
        save_clip(folder / "clip.pth")
        rows = []
        for module in args.modules:  # one process each: their modules hold per-run state at import
            result = subprocess.run([sys.executable, __file__, "--one", str(code), str(folder), module],
                                    capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if result.returncode != 0:
                sys.exit(f"{module}: {(result.stderr.strip().splitlines() or ['failed without a message'])[-1]}")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if args.out:
        atomic_json.write({"code": "shijxcs/LIFT", "commit": commit, "config": CONFIG, "rows": rows}, args.out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        _, _, code, folder, module = sys.argv
        print(json.dumps(compare(Path(code), Path(folder), module)))
    else:
        main()
