"""Backbones by name from timm and open_clip, beside the index registry of ``get_model.py``.

    --model timm:NAME[.TAG]     any timm model (``timm:resnet18``, ``timm:vit_base_patch16_224.augreg_in21k``)
    --model clip:NAME[.TAG]     a CLIP image encoder of open_clip (``clip:ViT-B-16.openai``)
    --model clip:CONFIG.json    one of your own open_clip model configs (its ``embed_dim`` and ``vision_cfg``)

A spec is its run folder's model name with ``-`` for ``:`` (``timm-resnet18``, ``clip-ViT-B-16.openai``,
``clip-CONFIG``).  timm and open_clip are imported only when such a backbone is built, so the other scripts start as
fast as before.  Nothing is downloaded: the library's named weights (``--pretrained`` without a file; timm's default
tag or the spec's ``.TAG``, open_clip's ``.TAG``) are read from its own local cache only (the Hugging Face hub cache,
or torch hub's for timm weights published by URL), with safetensors or ``weights_only=True``; when they are not
there, one line says which file to put where.  A CLIP encoder is open_clip's vision tower with a new linear head
on its image embedding (``ClipImageClassifier``); its architecture config goes into every checkpoint, so a run is
rebuilt without the config file.
"""
import argparse
import difflib
import importlib
import json
import re
from pathlib import Path

import torch
import torch.nn as nn

from utils import UserError, load_weights

LIBRARIES = {"timm": ("timm", "timm"), "clip": ("open_clip", "open_clip_torch")}  # spec prefix: (module, package)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # a model name, a tag, a config file's stem: a folder name
# What a CLIP model needs of an open_clip model config: the image tower, and the text tower's config (built only
# when a method reads text features: LIFT's classifier starts from the class names' features).
CLIP_KEYS = ("embed_dim", "vision_cfg", "quick_gelu", "text_cfg")
VOCABULARY = 49408  # tokens of OpenAI's BPE tokenizer (open_clip's SimpleTokenizer), which reads the class names


def parse(spec):
    """``(library, name)`` of a spec (``timm:resnet18`` -> ``("timm", "resnet18")``), or a ``ValueError``."""
    library, colon, name = str(spec).partition(":")
    if not colon or library not in LIBRARIES:
        raise ValueError(f"--model {spec!r} names no backbone: give timm:NAME or clip:NAME (e.g. timm:resnet18, "
                         "clip:ViT-B-16.openai), or a registry index with --model_index")
    stem = Path(name).stem if is_config_file(library, name) else name
    if not NAME.match(stem):
        raise ValueError(f"--model {spec!r}: {stem!r} is not a model name (letters, digits, '_', '-' and '.')")
    return library, name


def is_config_file(library, name):
    return library == "clip" and name.endswith(".json")


def folder_name(spec):
    """The run folder's model name of a spec: ``timm-resnet18``, ``clip-ViT-B-16.openai``, ``clip-<config stem>``."""
    library, name = parse(spec)
    return f"{library}-{Path(name).stem if is_config_file(library, name) else name}"


def spec_argument(text):
    """argparse type of ``--model``: a spec's syntax (the library is asked when the network is built)."""
    try:
        parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--model {text!r}").lstrip(": ")) from None
    return text


def absolute_spec(spec):
    """The spec as a run records it: a config file named by its absolute path (``clip:cfg.json`` ->
    ``clip:/abs/cfg.json``), any other spec as it is."""
    library, name = parse(spec)
    return f"{library}:{Path(name).resolve()}" if is_config_file(library, name) else spec


def file_architecture(spec):
    """The architecture a config-file spec's file holds now (as a run of it records its ``model_config``), or None:
    another spec, or a file that is missing or not a model config."""
    library, name = parse(spec)
    if not is_config_file(library, name):
        return None
    try:
        return _clip_config(None, name, "", {})
    except ValueError:
        return None


def checked_spec(spec):
    """``absolute_spec``, once a config file is found to exist."""
    library, name = parse(spec)
    if is_config_file(library, name) and not Path(name).is_file():
        raise ValueError(f"--model {spec}: no file {name} (an open_clip model config: embed_dim and vision_cfg)")
    return absolute_spec(spec)


def describe(spec, config=None):
    """What the registry needs of a named backbone (``get_model.Network``'s fields): its name, ``build(num_classes)``
    with random weights, ``pretrained(num_classes)`` with the library's named weights, the only input size it takes
    (None: any), and the mean/std its weights were trained with.  ``config``: a CLIP run's recorded architecture
    (used instead of the library's or the file's).  ``ValueError`` for a name the library does not know."""
    library, name = parse(spec)
    return (_timm if library == "timm" else _clip)(folder_name(spec), name, config)


def _import(library):
    module, package = LIBRARIES[library]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"--model {library}:... needs the {package} package: pip install -r "
                         "requirements.txt") from None


def _unknown(what, name, known):
    close = difflib.get_close_matches(name, known, n=3)
    return ValueError(f"{what} {name!r} is unknown" + (f" (did you mean {', '.join(close)}?)" if close else ""))


# ---------------------------------------------------------------- timm

def _timm(folder, name, config):
    timm = _import("timm")
    architecture, _, tag = name.partition(".")
    if not timm.is_model(architecture):
        raise _unknown("timm model", architecture, timm.list_models())
    try:
        cfg = timm.get_pretrained_cfg(name)  # None: an architecture without published weights
    except RuntimeError:
        tags = [pretrained.partition(".")[2] for pretrained in timm.list_pretrained(f"{architecture}.*")]
        raise _unknown(f"timm tag of {architecture}:", tag, tags) from None
    fixed = cfg is not None and cfg.fixed_input_size  # a ViT's position embedding fits one size
    return dict(name=folder, build=lambda num_classes: timm.create_model(name, num_classes=num_classes),
                exact_size=_square(cfg.input_size[1:]) if fixed else None,
                mean=tuple(cfg.mean if cfg else timm.data.IMAGENET_DEFAULT_MEAN),
                std=tuple(cfg.std if cfg else timm.data.IMAGENET_DEFAULT_STD),
                pretrained=lambda num_classes: _timm_pretrained(timm, name, cfg, num_classes))


def _timm_pretrained(timm, name, cfg, num_classes):
    """timm's network with its named weights from the local cache; timm adapts them (its checkpoint filter) and
    drops its classifier for ``num_classes``."""
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ValueError(f"timm publishes no weights for {name}; train it from scratch (no --pretrained) or give "
                         "--pretrained FILE")
    label = f"timm weights {cfg.architecture}.{cfg.tag}" if cfg.tag else f"timm weights of {name}"
    if cfg.hf_hub_id:
        path = _hub_cached(cfg.hf_hub_id, [cfg.hf_hub_filename] if cfg.hf_hub_filename else
                           ["model.safetensors", "pytorch_model.bin"], label)
    else:
        path = _torch_hub_cached(cfg.url, label)
    state = weights_in(path)
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes,
                                  pretrained_cfg_overlay=dict(source="", file=None, state_dict=state))
    except (RuntimeError, KeyError) as error:
        raise ValueError(f"{path} does not hold the {label} ({str(error).splitlines()[0][:160]}); delete it and "
                         "put the published file there again") from None
    model.pretrained_cfg.pop("state_dict", None)  # a second copy of every weight, not kept alive by the model
    return model


# ---------------------------------------------------------------- open_clip

class ClipImageClassifier(nn.Module):
    """A CLIP image encoder and a new linear classifier on its image embedding.  The tower is named ``visual``, as
    in open_clip's CLIP, so a CLIP checkpoint's ``visual.*`` weights load into it by name; ``model_config`` is its
    architecture, recorded in every checkpoint."""

    def __init__(self, visual, embed_dim, num_classes, model_config):
        super().__init__()
        self.visual = visual
        self.head = nn.Linear(embed_dim, num_classes)
        self.model_config = model_config

    def forward(self, images):
        return self.head(self.visual(images))


def _clip_tag(open_clip, name):
    """``(architecture, tag, the tag's open_clip config)`` of a CLIP spec's name; empty strings and ``{}`` for a
    config file or a name without a tag."""
    architecture, _, tag = ("", "", "") if is_config_file("clip", name) else name.partition(".")
    return architecture, tag, open_clip.get_pretrained_cfg(architecture, tag) if tag else {}


def _clip(folder, name, config):
    open_clip = _import("clip")
    architecture, tag, tag_cfg = _clip_tag(open_clip, name)
    if tag and not tag_cfg and config is None:  # a recorded run is rebuilt from its config, whatever the tags now
        raise _unknown(f"open_clip tag of {architecture}:", tag, open_clip.list_pretrained_tags_by_model(architecture))
    if config is None:
        config = _clip_config(open_clip, name, architecture, tag_cfg)
    try:
        from open_clip.model import CLIPVisionCfg
        vision = CLIPVisionCfg(**config["vision_cfg"])
    except (TypeError, KeyError) as error:
        raise ValueError(f"--model clip:{name}: not an open_clip model config ({error})") from None
    size = vision.image_size

    def build(num_classes):
        from open_clip.model import _build_vision_tower  # what open_clip's CLIP builds its image tower with
        visual = _build_vision_tower(config["embed_dim"], {**config["vision_cfg"], "timm_model_pretrained": False},
                                     config.get("quick_gelu", False))
        return ClipImageClassifier(visual, config["embed_dim"], num_classes, config)

    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    return dict(name=folder, build=build, exact_size=_square(size if isinstance(size, (list, tuple)) else (size, size)),
                mean=tuple(tag_cfg.get("mean", OPENAI_DATASET_MEAN)), std=tuple(tag_cfg.get("std", OPENAI_DATASET_STD)),
                pretrained=lambda num_classes: _clip_pretrained(build(num_classes), name, tag_cfg))


def _clip_config(open_clip, name, architecture, tag_cfg):
    """The image tower's part of an open_clip model config: the library's, or a JSON file's."""
    if is_config_file("clip", name):
        try:
            config = json.loads(Path(name).read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"--model clip:{name}: cannot read it as JSON ({str(error).splitlines()[0]})") from None
        if not isinstance(config, dict) or not isinstance(config.get("vision_cfg"), dict) or "embed_dim" not in config:
            raise ValueError(f"--model clip:{name}: not an open_clip model config (it needs embed_dim and vision_cfg)")
    else:
        config = open_clip.get_model_config(architecture)
        if config is None:
            raise _unknown("open_clip model", architecture, open_clip.list_models())
    if tag_cfg:  # OpenAI's weights were trained with QuickGELU: the architecture follows the weights
        config["quick_gelu"] = tag_cfg.get("quick_gelu", False)
    return {key: config[key] for key in CLIP_KEYS if key in config}


def _clip_pretrained(model, name, tag_cfg):
    """A CLIP image classifier with its tower's weights from open_clip's local cache (every ``visual.*`` weight)."""
    if not tag_cfg:
        raise ValueError(f"--model clip:{name} names no weights: add the open_clip tag, e.g. clip:ViT-B-16.openai "
                         "(python -c \"import open_clip; print(open_clip.list_pretrained())\"), or give --pretrained "
                         "FILE")
    path = _clip_weights_path(name, tag_cfg)
    label = f"open_clip weights {name}"
    state = {key: value for key, value in weights_in(path).items() if key.startswith("visual.")}
    own = {key: value for key, value in model.state_dict().items() if key.startswith("visual.")}
    unfit = _unfit(own, state)
    if unfit:
        raise ValueError(f"{path} does not hold the {label} (it lacks {unfit[0]}, or has another shape, and "
                         f"{len(unfit) - 1} more); delete it and put the published file there again")
    model.load_state_dict(state, strict=False)
    return model


def _clip_weights_path(name, tag_cfg):
    """The local file of an open_clip tag's weights (the hub cache, or ``~/.cache/clip``), or a ``ValueError``."""
    label = f"open_clip weights {name}"
    if tag_cfg.get("hf_hub"):
        repo, filename = tag_cfg["hf_hub"].rstrip("/"), "open_clip_pytorch_model.bin"
        if not tag_cfg["hf_hub"].endswith("/"):  # org/repo/file
            repo, _, filename = repo.rpartition("/")
        safe = Path(filename).with_suffix(".safetensors").name.replace("open_clip_pytorch_model", "open_clip_model")
        return _hub_cached(repo, [safe, filename], label)
    return _torch_hub_cached(tag_cfg["url"], label, Path.home() / ".cache" / "clip")


def clip_text_features(spec, config, pretrained, texts):
    """The L2-normalised text embeddings of ``texts`` (one row each) by the text tower of the CLIP whose image tower
    a run trains: its architecture ``config`` (the run's, with ``text_cfg``) and its weights from ``pretrained``, a
    file (a whole CLIP state dict) or ``"imagenet"`` (the spec's tag, from the library's cache).  Tokenised by
    open_clip's BPE tokenizer (OpenAI's vocabulary).  ``ValueError`` for a config without a text tower, weights
    without one, or a tokenizer this cannot build offline."""
    open_clip = _import("clip")
    from open_clip.model import CLIPTextCfg, _build_text_tower

    library, name = parse(spec)
    text_cfg = (config or {}).get("text_cfg")
    if not isinstance(text_cfg, dict):
        raise ValueError(f"--model {spec}: its config has no text tower (text_cfg), so no text features")
    if text_cfg.get("hf_tokenizer_name"):
        raise ValueError(f"--model {spec}: its text tower reads the Hugging Face tokenizer "
                         f"{text_cfg['hf_tokenizer_name']}; the text features are read with OpenAI's BPE tokenizer only")
    if pretrained is None:
        raise ValueError(f"--model {spec}: the text features need the CLIP's weights: give --pretrained FILE (a CLIP "
                         "state dict with its text tower) or --pretrained with a cached tag")
    if text_cfg.get("vocab_size", VOCABULARY) != VOCABULARY:
        raise ValueError(f"--model {spec}: its text tower has a vocabulary of {text_cfg['vocab_size']} tokens; the "
                         f"text features are read with OpenAI's BPE tokenizer ({VOCABULARY} tokens) only")
    if pretrained == "imagenet":
        _, tag, tag_cfg = _clip_tag(open_clip, name)
        if not tag_cfg:
            raise ValueError(f"--model {spec} names no published weights: give --pretrained FILE (a CLIP state dict "
                             "with its text tower)")
        path = _clip_weights_path(name, tag_cfg)
    else:
        path = Path(pretrained)
    try:
        tower = _build_text_tower(config["embed_dim"], CLIPTextCfg(**text_cfg), config.get("quick_gelu", False))
    except (TypeError, KeyError) as error:
        raise ValueError(f"--model {spec}: its text_cfg is not an open_clip text tower's ({error})") from None
    state = weights_in(path)
    own = tower.state_dict()
    unfit = _unfit(own, state)
    if unfit:
        raise ValueError(f"{path} holds no text tower of --model {spec} (it lacks {unfit[0]}, or has another shape, "
                         f"and {len(unfit) - 1} more): give the whole CLIP state dict")
    tower.load_state_dict({key: state[key] for key in own})
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=tower.context_length)
    with torch.no_grad():
        return nn.functional.normalize(tower.eval()(tokenizer(list(texts))).float(), dim=-1)


# ---------------------------------------------------------------- the libraries' local caches

def _hub_cached(repo, filenames, label):
    """The first of ``filenames`` of Hugging Face repository ``repo`` in the local hub cache; never downloads."""
    from huggingface_hub import constants, try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    raise ValueError(f"the {label} are not in the Hugging Face cache {constants.HF_HUB_CACHE}, and nothing is "
                     f"downloaded: on a machine online run 'hf download {repo} {filenames[0]}' and copy its "
                     f"models--{repo.replace('/', '--')} folder into that cache, or save {filenames[0]} from "
                     f"https://huggingface.co/{repo} and give it as --pretrained FILE")


def _torch_hub_cached(url, label, cache=None):
    """The file of ``url`` in the torch hub cache (or ``cache``); never downloads."""
    cache = cache or Path(torch.hub.get_dir()) / "checkpoints"
    path = cache / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise ValueError(f"the {label} are not cached and nothing is downloaded: put {path.name} (from {url}) into "
                         f"{cache}/, or give it as --pretrained FILE")
    return path


def weights_in(path):
    """The tensors of a weights file by name (``utils.load_weights``: safetensors, or torch.save's read with
    ``weights_only``): a plain state dict, or the one inside a checkpoint (``model``: this project's;
    ``state_dict``, ``model_state_dict``: other tools'), without DDP's ``module.`` prefix; ``ValueError`` for a file
    that cannot be read so."""
    try:
        state = load_weights(path)
    except UserError as error:
        raise ValueError(str(error)) from None
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return {name.removeprefix("module."): value for name, value in state.items()
            if isinstance(name, str) and torch.is_tensor(value)}


def _unfit(own, state):
    """The names of ``own`` (a module's state dict) that ``state`` lacks, or holds in another shape."""
    return [key for key in own if key not in state or state[key].shape != own[key].shape]


def _square(size):
    height, width = (int(v) for v in size)
    return height if height == width else (height, width)
