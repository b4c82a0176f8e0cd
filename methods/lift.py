"""LIFT: lightweight fine-tuning of a CLIP image encoder for long tails (Shi et al., ICML 2024, ``shijxcs/LIFT``):
values and their sources in docs/recipes.md ("LIFT")."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from b_models.heads import NormedLinear
from benchmarks import class_names
from methods.base import Method
from utils import UserError, number, positive

# What their ViT_Tuner offers (models/peft_vit.py), by this project's names; "none" trains the classifier alone.
MODULES = ("adaptformer", "adapter", "lora", "vpt_shallow", "vpt_deep", "bitfit", "ln", "ssf", "full", "none")
BOTTLENECKED = ("adaptformer", "adapter", "lora")
PROMPT = "a photo of a {}."  # their default prompt (trainer.py:344), class names with "_" as " " (trainer.py:306):
# here the names behind the class folders (benchmarks.class_names: without the label prefix data_split.py adds)
TTE_EXPAND_AT_224 = 24  # their test-time ensemble's margin at 224 px (configs/model/clip_vit_b16.yaml)


class Lift(Method):
    """The CLIP image tower frozen, one parameter-efficient module trained inside it (``--lift_module``; their
    default AdaptFormer), and a cosine classifier on the class token's final features that starts from the text
    features of ``"a photo of a {class}."`` projected back through the image projection.  The run's objective is
    the loss (theirs: LA, tau 1); ``2_test.py`` adds their test-time ensemble (``ensemble``)."""

    name = "lift"
    about = ("LIFT (Shi et al., 2024): a frozen CLIP image encoder, a small module trained inside it, a "
             "text-initialised cosine classifier")
    flags = {
        "lift_module": dict(choices=MODULES, default="adaptformer",
                            help="LIFT: what is trained besides the classifier (their default: adaptformer)"),
        "lift_bottleneck": dict(type=positive(int), default=None,
                                help="LIFT: AdaptFormer's, the adapter's or LoRA's bottleneck (default: their rule, "
                                     "2^max(0, int(log2(K / 2L))) for K classes and L blocks)"),
        "lift_prompt_length": dict(type=positive(int), default=None,
                                   help="LIFT: visual prompts per block for vpt_shallow, vpt_deep (default: 10)"),
        "lift_scale": dict(type=positive(float), default=25.0, help="LIFT: the cosine classifier's scale"),
        "lift_init": dict(choices=("text", "class_mean"), default="text",
                          help="LIFT: the classifier's start: the class names' CLIP text features (their default "
                               "for CLIP), or the mean of each class's training features (theirs for a ViT without "
                               "a text tower)"),
        "lift_tte_expand": dict(type=number(int, 0), default=None,
                                help="LIFT: the test-time ensemble's five crops come from the image enlarged by "
                                     "this many pixels (default: 24 at 224 px, scaled to the input size)"),
    }

    @classmethod
    def check(cls, args, objective):
        super().check(args, objective)
        if not str(args.model or "").startswith("clip:"):
            raise UserError("--method lift fine-tunes a CLIP image encoder: give --model clip:NAME.TAG or "
                            "--model clip:CONFIG.json")
        if args.normed_head:
            set_by = f" (which --objective {args.objective} sets)" if objective.normed_head else ""
            raise UserError(f"--method lift has its own cosine classifier (--lift_scale): it does not go with "
                            f"--normed_head{set_by}")
        if args.pretrained is None:
            raise UserError("--method lift starts from CLIP's weights (its classifier from the text tower): give "
                            "--pretrained FILE, or --pretrained for the tag's cached weights")
        if args.maxnorm:
            raise UserError("--maxnorm bounds the norms of a linear classifier's class vectors; LIFT's cosine "
                            "classifier has unit norms already")
        if args.init_from and not args.reinit_head:
            raise UserError("--method lift starts its classifier from the class names or means (--lift_init), which "
                            "would replace the classifier of --init_from: add --reinit_head, or drop --init_from")
        if args.lift_bottleneck is not None and args.lift_module not in BOTTLENECKED:
            raise UserError(f"--lift_bottleneck sizes {', '.join(BOTTLENECKED)}, not --lift_module {args.lift_module}")
        if args.lift_prompt_length is not None and not args.lift_module.startswith("vpt"):
            raise UserError(f"--lift_prompt_length sizes vpt_shallow and vpt_deep, not --lift_module "
                            f"{args.lift_module}")

    @classmethod
    def resolve(cls, settings):
        if settings.get("lift_module", "").startswith("vpt") and settings.get("lift_prompt_length") is None:
            settings["lift_prompt_length"] = 10  # their default length (models/peft_vit.py:90-91)
        if settings.get("lift_tte_expand") is None:
            side = min(settings.get("height") or 224, settings.get("width") or 224)
            settings["lift_tte_expand"] = round(TTE_EXPAND_AT_224 * side / 224)

    @classmethod
    def network(cls, model, settings, num_classes):
        from open_clip.transformer import ResidualAttentionBlock

        visual = getattr(model, "visual", None)
        if visual is None or not hasattr(visual, "class_embedding") or getattr(visual, "attn_pool", None) is not None \
                or getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError("--method lift needs a CLIP vision transformer pooled by its class token (an open_clip "
                             "ViT config)")
        # LiftNetwork runs the blocks as their Peft_ViT does: open_clip's plain block (no qk-norm, no scaled
        # attention or MLP norms), every token kept (no patch dropout), the tower's projection there for the text start
        plain = all(type(block) is ResidualAttentionBlock and isinstance(block.attn, nn.MultiheadAttention)
                    for block in visual.transformer.resblocks)
        if not plain or not isinstance(visual.patch_dropout, nn.Identity) or getattr(visual, "proj", None) is None:
            raise ValueError("--method lift runs open_clip's plain ViT blocks as LIFT's code does: this config has "
                             "other blocks (qk_norm, scale_attn, scale_fc), patch_dropout or no output projection")
        return LiftNetwork(visual, getattr(model, "model_config", None), num_classes, settings["lift_module"],
                           settings.get("lift_bottleneck"), settings.get("lift_prompt_length"), settings["lift_scale"])

    def start(self, model, classes, args, train_stream):
        """The classifier's start (``--lift_init``): their ``init_head_text_feat`` (trainer.py:312-353), the prompts'
        normalised text features mapped back through the image projection (``@ proj.t()``) and normalised again;
        or their ``init_head_class_mean`` (trainer.py:355-390, ``class_mean_features``)."""
        if args.lift_init == "class_mean":
            weight = class_mean_features(model, train_stream, len(classes))
        else:
            from b_models.foundation import clip_text_features

            try:
                features = clip_text_features(args.model, model.model_config, args.pretrained, prompts(classes))
            except ValueError as error:
                raise UserError(str(error)) from None
            weight = F.normalize(features.to(model.visual.proj) @ model.visual.proj.t(), dim=-1)
        with torch.no_grad():
            model.head.weight.copy_(weight)

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        logits = model(images)
        return loss_fn(logits, labels), logits, labels

    @classmethod
    def evaluations(cls, settings):
        return {"ensemble": five_crop_ensemble}


def prompts(classes):
    """Their prompt for each class folder: ``"a photo of a {class name}."``."""
    return [PROMPT.format(name) for name in class_names(classes)]


@torch.no_grad()
def class_mean_features(model, stream, num_classes):
    """Each class's mean feature, without the module (their ``use_tuner=False``), over the training images as an
    evaluation reads them (their ``transform_plain``: a resize and centre crop to the input size), normalised to
    unit length; a class without images keeps a zero vector."""
    was_training = model.training
    model.eval()
    sums, counts = None, torch.zeros(num_classes)
    for images, labels in stream.unaugmented():
        features = model.features(images, use_tuner=False).float().cpu()
        sums = torch.zeros(num_classes, features.shape[1]) if sums is None else sums
        sums.index_add_(0, labels.cpu(), features)
        counts += torch.bincount(labels.cpu(), minlength=num_classes)
    model.train(was_training)
    return F.normalize(sums / counts.clamp(min=1)[:, None], dim=-1)


def default_bottleneck(num_classes, layers):
    """Their rule (models/peft_vit.py:94-95): ``2 ** max(0, int(log2(K / (2 L))))``; ``int`` truncates towards 0."""
    return 2 ** max(0, int(math.log2(num_classes / (layers * 2))))


class LiftNetwork(nn.Module):
    """A CLIP vision transformer (``visual``, frozen but for what the module trains: every bias for bitfit, the
    blocks' layer norms for ln, the blocks for full), the module's parameters (``tuner``, one entry per block) and
    a cosine classifier on the class token after ``ln_post`` (``head``; the image projection is not applied).
    Each block runs as their ``Peft_ViT.forward`` runs it (models/peft_vit.py:286-464)."""

    def __init__(self, visual, model_config, num_classes, module, bottleneck=None, prompt_length=None, scale=25.0):
        super().__init__()
        self.visual, self.model_config, self.kind = visual, model_config, module
        blocks = visual.transformer.resblocks
        width, layers = visual.class_embedding.shape[0], len(blocks)
        self.tokens = visual.positional_embedding.shape[0]  # class token and patches: what a deep prompt replaces
        self.bottleneck = (bottleneck or default_bottleneck(num_classes, layers)) if module in BOTTLENECKED else None
        self.tuner = nn.ModuleDict({module: nn.ModuleDict({str(i): m for i, m in enumerate(
            self._modules_of(module, blocks, width, visual.conv1.kernel_size, prompt_length)) if m is not None})}) \
            if module in ("adaptformer", "adapter", "lora", "vpt_shallow", "vpt_deep", "ssf") else nn.ModuleDict()
        # Their CosineClassifier (models/classifiers.py:33-41, scale 25 from utils/config.py:30) is this project's
        # cosine head: rows drawn uniform in [-1, 1] and scaled to unit length, logits scale * cos(x, w_k).
        self.head = NormedLinear(width, num_classes, scale)
        for parameter in visual.parameters():
            parameter.requires_grad_(False)
        for parameter in self._tuned_backbone(module, blocks):
            parameter.requires_grad_(True)

    def _modules_of(self, module, blocks, width, patch, prompt_length):
        if module == "adaptformer":
            return [AdaptFormer(width, self.bottleneck) for _ in blocks]
        if module == "adapter":
            return [Adapter(width, self.bottleneck) for _ in blocks]
        if module == "lora":
            return [nn.ModuleDict({"q": LoRA(width, self.bottleneck), "v": LoRA(width, self.bottleneck)})
                    for _ in blocks]
        if module.startswith("vpt"):
            return [VisualPrompt(prompt_length, width, patch) if module == "vpt_deep" or i == 0 else None
                    for i in range(len(blocks))]
        return [nn.ModuleDict({name: SSF(size) for name, size in (
            ("ln_1", width), ("attn_in", 3 * width), ("attn_out", width), ("ln_2", width),
            ("mlp_in", block.mlp.c_fc.out_features), ("mlp_out", width))}) for block in blocks]

    @staticmethod
    def _tuned_backbone(module, blocks):
        """The backbone's parameters the module trains (their ``bias_tuned``, ``ln_tuned``, ``block_tuned``)."""
        if module == "bitfit":
            return [p for name, p in blocks.named_parameters() if name.endswith("bias")]
        if module == "ln":
            return [p for m in blocks.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()]
        return list(blocks.parameters()) if module == "full" else []

    def features(self, images, use_tuner=True):
        """The class token's features after ``ln_post`` (their ``Peft_ViT`` output without a head); without the
        module's parameters when not ``use_tuner`` (the backbone's own, for the class-mean start)."""
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
        x = visual.ln_pre(visual.patch_dropout(x + visual.positional_embedding.to(x.dtype)))
        tuned = self.tuner[self.kind] if use_tuner and self.kind in self.tuner else {}
        for i, block in enumerate(visual.transformer.resblocks):
            x = self._block(block, x, tuned[str(i)] if str(i) in tuned else None)
        return visual.ln_post(x[:, 0])

    def forward(self, images):
        return self.head(self.features(images))

    def _block(self, block, x, tuned):
        """One residual block, batch first, with the module of this block (or None)."""
        module = self.kind if tuned is not None else None
        ssf = tuned if module == "ssf" else {}
        if module in ("vpt_shallow", "vpt_deep"):
            x = tuned(x, self.tokens)
        attention, batch, length, width = block.attn, *x.shape
        identity = x
        h = block.ln_1(x)
        h = ssf["ln_1"](h) if ssf else h
        q, k, v = F.linear(h, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
        if module == "lora":
            q, v = q + tuned["q"](h), v + tuned["v"](h)
        if ssf:
            q, k, v = ssf["attn_in"](torch.cat([q, k, v], dim=-1)).chunk(3, dim=-1)
        heads = attention.num_heads
        q, k, v = (t.reshape(batch, length, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, width)
        h = F.linear(h, attention.out_proj.weight, attention.out_proj.bias)
        x = identity + block.ls_1(ssf["attn_out"](h) if ssf else h)
        identity = x
        h = block.ln_2(x)
        h = ssf["ln_2"](h) if ssf else h
        h = block.mlp.c_fc(h)
        h = block.mlp.gelu(ssf["mlp_in"](h) if ssf else h)
        h = block.mlp.c_proj(h)
        h = block.ls_2(ssf["mlp_out"](h) if ssf else h)
        if module == "adapter":  # after the MLP, on its output
            h = h + tuned(h)
        if module == "adaptformer":  # beside the MLP, on the block's input to it
            h = h + tuned(identity)
        return identity + h


class _Bottleneck(nn.Module):
    """LayerNorm, down-projection, ReLU, up-projection; the up-projection and both biases start at zero, so the
    module adds nothing at the start (models/peft_modules.py:29-51)."""

    def __init__(self, width, bottleneck):
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.down_proj, self.up_proj = nn.Linear(width, bottleneck), nn.Linear(bottleneck, width)
        nn.init.kaiming_normal_(self.down_proj.weight, a=math.sqrt(5))
        for tensor in (self.up_proj.weight, self.down_proj.bias, self.up_proj.bias):
            nn.init.zeros_(tensor)

    def forward(self, x):
        return self.up_proj(F.relu(self.down_proj(self.ln(x))))


class Adapter(_Bottleneck):
    """Their ``Adapter``: added to the MLP's output."""


class AdaptFormer(_Bottleneck):
    """Their ``AdaptFormer`` (models/peft_modules.py:54-78): the bottleneck times a learned scale (starting at 1),
    added beside the MLP."""

    def __init__(self, width, bottleneck):
        super().__init__(width, bottleneck)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return super().forward(x) * self.scale


class LoRA(nn.Module):
    """Their ``LoRA`` (models/peft_modules.py:81-99): ``x A B / r``, ``A`` (width x r) Kaiming-uniform with ``a =
    sqrt(5)`` over its second dimension (fan-in r), ``B`` zero.  peft's ``LoraLayer`` differs (A is r x width, its
    fan-in the width; no ``nn.MultiheadAttention`` q/v split), so this is theirs, not peft's."""

    def __init__(self, width, bottleneck):
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros(width, bottleneck))
        self.lora_B = nn.Parameter(torch.zeros(bottleneck, width))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = 1.0 / bottleneck

    def forward(self, x):
        return (x @ self.lora_A @ self.lora_B) * self.scaling


class VisualPrompt(nn.Module):
    """Their ``VPT`` (models/peft_modules.py:10-26): ``length`` learned tokens after the class token and patches,
    replacing the previous block's prompts; uniform in +-sqrt(6 / (3 * patch area + width))."""

    def __init__(self, length, width, patch):
        super().__init__()
        bound = math.sqrt(6.0 / float(3 * patch[0] * patch[1] + width))
        self.prompt = nn.Parameter(torch.empty(length, width).uniform_(-bound, bound))

    def forward(self, x, tokens):
        return torch.cat([x[:, :tokens], self.prompt.expand(x.shape[0], -1, -1)], dim=1)


class SSF(nn.Module):
    """Their ``SSF`` (models/peft_modules.py:102-118): a per-channel scale ~ N(1, 0.02) and shift ~ N(0, 0.02)."""

    def __init__(self, size):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(size).normal_(1.0, 0.02))
        self.shift = nn.Parameter(torch.empty(size).normal_(0.0, 0.02))

    def forward(self, x):
        return x * self.scale + self.shift


@torch.no_grad()
def five_crop_ensemble(model, stream, runtime, settings, class_prior=None):
    """Their test-time ensemble (trainer.py:116-123, 568-573): the mean logits of five crops (four corners and the
    centre) at the input size of the image enlarged by ``lift_tte_expand`` pixels.  They enlarge the image file
    (``Resize(224 + 24)``); here the evaluated image (after the run's resize and centre crop) is enlarged, with the
    same bilinear, antialiased resampling: the crops see a little less of the border than theirs."""
    from torchvision.transforms.v2 import functional as TF

    model.eval()
    expand, logits = settings["lift_tte_expand"], []
    for images, _ in stream:
        height, width = images.shape[2:]
        larger = F.interpolate(images, size=(height + expand, width + expand), mode="bilinear", antialias=True,
                               align_corners=False)
        with runtime.autocast(evaluation=True):
            crops = [model(crop).float() for crop in TF.five_crop(larger, [height, width])]
        logits.append(torch.stack(crops).mean(dim=0).cpu())
    return torch.cat(logits).numpy(), {"crops": 5, "expand": expand}
