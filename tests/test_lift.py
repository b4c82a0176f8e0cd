"""LIFT (``--method lift``, methods/lift.py) on a tiny random CLIP saved here: what each module trains (counted by
hand), the forward against open_clip's own tower, AdaptFormer's place in a block, the text-initialised classifier
against open_clip's text features, the loss as their LogitAdjustedLoss, one step moving only what is trained, the
five-crop ensemble, refusals in one line, and a run trained, tested and applied from its files.  The side-by-side
with the authors' code is ``bench/authors/lift.py`` (their clone is not a test dependency)."""
import json
import re

import pytest
import torch
import torch.nn.functional as F

import get_model
import runs
import train_args
from conftest import call

# A 2-block ViT of width 32 (2 heads, MLP 128) on 32 x 32 images in 8 x 8 patches, and a 1-block text tower with
# OpenAI's vocabulary (the tokenizer's ids) and 16 tokens.
LIFT_CLIP = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2,
                                             "head_width": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
WIDTH, LAYERS, MLP, CLASSES = 32, 2, 128, ["cat", "dog", "fox"]
TRAIN = ["--dataset=tiny", "--height=32", "--width=32", "--batchsize=8", "--seed=0", "--model=clip:clip.json",
         "--pretrained=clip.pth", "--method=lift", "--objective=LA", "--lr=0.01", "--schedule=cosine_each_epoch",
         "--augment=rrc_flip"]


def save_clip(folder):
    """``clip.json`` and ``clip.pth`` (a whole random CLIP's state dict) in ``folder``; the CLIP."""
    import open_clip

    (folder / "clip.json").write_text(json.dumps(LIFT_CLIP))
    torch.manual_seed(3)
    clip = open_clip.CLIP(**LIFT_CLIP).eval()
    torch.save(clip.state_dict(), folder / "clip.pth")
    return clip


def lift_network(folder, module="adaptformer", *extra):
    """This project's LIFT network of ``folder``'s CLIP, as 1_train.py builds it (weights loaded), and its args."""
    args = train_args.get_args_parser().parse_args([*TRAIN, f"--model=clip:{folder / 'clip.json'}",
                                                    f"--pretrained={folder / 'clip.pth'}", "--lift_module", module,
                                                    *extra])
    vars(args).update(train_args.resolve(vars(args)))
    model = runs.method_network(get_model.build_network(args.model, len(CLASSES)), vars(args), len(CLASSES))
    get_model.load_matching(model, folder / "clip.pth")
    return model, args


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return folder, save_clip(folder)


# Per block: ln_1, ln_2 (weight and bias), attention in (3 W x W + 3 W) and out (W x W + W), MLP in (W x M + M) and
# out (M x W + W).  K = 3 classes: their bottleneck rule gives 2^max(0, int(log2(3 / 4))) = 2^0 = 1.
HEAD = len(CLASSES) * WIDTH
BLOCK_BIASES = WIDTH + 3 * WIDTH + WIDTH + WIDTH + MLP + WIDTH
BLOCK = (4 * WIDTH + (3 * WIDTH * WIDTH + 3 * WIDTH) + (WIDTH * WIDTH + WIDTH) + (WIDTH * MLP + MLP)
         + (MLP * WIDTH + WIDTH))
HAND_COUNTS = {
    "none": HEAD,
    "adaptformer": HEAD + LAYERS * (2 * WIDTH + (WIDTH * 1 + 1) + (1 * WIDTH + WIDTH) + 1),  # LN, down, up, scale
    "adapter": HEAD + LAYERS * (2 * WIDTH + (WIDTH * 1 + 1) + (1 * WIDTH + WIDTH)),
    "lora": HEAD + LAYERS * 2 * (WIDTH * 1 + 1 * WIDTH),  # q and v: A (W x r) and B (r x W)
    "vpt_shallow": HEAD + 10 * WIDTH,  # 10 prompts before the first block
    "vpt_deep": HEAD + LAYERS * 10 * WIDTH,
    "bitfit": HEAD + LAYERS * BLOCK_BIASES,
    "ln": HEAD + LAYERS * 4 * WIDTH,
    "ssf": HEAD + LAYERS * 2 * (WIDTH + 3 * WIDTH + WIDTH + WIDTH + MLP + WIDTH),  # scale and shift after 6 ops
    "full": HEAD + LAYERS * BLOCK,
}


@pytest.mark.parametrize("module", list(HAND_COUNTS))
def test_each_module_trains_what_their_code_trains(clip_folder, module):
    model, _ = lift_network(clip_folder[0], module)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trained == HAND_COUNTS[module]
    assert not any(p.requires_grad for name, p in model.visual.named_parameters()
                   if not name.startswith("transformer.resblocks."))  # the stem, ln_pre, ln_post, proj: frozen


def test_the_forward_is_open_clips_tower_and_adaptformer_sits_beside_the_mlp(clip_folder):
    folder, clip = clip_folder
    model, _ = lift_network(folder, "adaptformer")
    images = torch.randn(4, 3, 32, 32)
    visual = clip.visual
    with torch.no_grad():
        tokens = visual.transformer(visual._embeds(images))
        expected = visual.ln_post(tokens)[:, 0]  # the class token before the projection
        assert torch.allclose(model.eval().features(images), expected, atol=1e-5)
        for adapter in model.tuner["adaptformer"].values():  # a module that adds something
            adapter.up_proj.weight.normal_()
            adapter.scale.fill_(0.5)
        x = visual._embeds(images)  # patches, class token, positions, ln_pre
        for i, block in enumerate(visual.transformer.resblocks):
            middle = x + block.attention(block.ln_1(x))
            adapter = model.tuner["adaptformer"][str(i)]
            bottleneck = F.linear(F.relu(F.linear(F.layer_norm(middle, (WIDTH,), adapter.ln.weight, adapter.ln.bias),
                                                  adapter.down_proj.weight, adapter.down_proj.bias)),
                                  adapter.up_proj.weight, adapter.up_proj.bias)
            x = middle + block.mlp(block.ln_2(middle)) + 0.5 * bottleneck
        assert torch.allclose(model.features(images), visual.ln_post(x)[:, 0], atol=1e-5)


@pytest.mark.parametrize("folders, names", [
    (CLASSES, CLASSES),
    (["0_ankle_boot", "1_T-shirt-top", "2_fox"], ["ankle boot", "T-shirt-top", "fox"]),  # data_split.py's folders
])
def test_the_classifier_starts_from_the_prompts_text_features(clip_folder, folders, names):
    import open_clip

    folder, clip = clip_folder
    model, args = lift_network(folder)
    from methods.lift import Lift

    Lift(model, len(CLASSES), [12, 8, 4], args).start(model, folders, args, None)
    prompts = open_clip.tokenizer.SimpleTokenizer(context_length=16)([f"a photo of a {name}." for name in names])
    with torch.no_grad():
        text = F.normalize(clip.encode_text(prompts), dim=-1)
        expected = F.normalize(text @ clip.visual.proj.t(), dim=-1)
    assert torch.allclose(model.head.weight, expected, atol=1e-6)
    features = torch.randn(2, WIDTH)
    assert torch.allclose(model.head(features), 25 * F.normalize(features, dim=-1) @ expected.t(), atol=1e-5)


def test_bottleneck_rule_and_their_loss():
    from methods.lift import default_bottleneck
    import criterion

    assert [default_bottleneck(k, 12) for k in (1000, 365, 8142, 100, 10)] == [32, 8, 256, 4, 1]  # ImageNet-LT 32
    counts = torch.tensor([12.0, 8.0, 4.0])
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, 1])
    theirs = F.cross_entropy(logits + torch.log(counts / counts.sum()), labels)  # LogitAdjustedLoss, tau 1
    assert torch.isclose(criterion.get_criterion("LA", 3, [12, 8, 4], la_tau=1.0)(logits, labels), theirs)


def test_one_step_moves_only_what_is_trained(clip_folder):
    from optimisation import build_optimisation

    model, args = lift_network(clip_folder[0], "lora")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = build_optimisation(args, model, 1)[0]
    loss = F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {name for name, p in model.named_parameters() if p.requires_grad}
    assert moved and all(name.startswith(("tuner.lora.", "head.")) for name in moved)


def test_the_ensemble_is_the_mean_of_five_crops_of_the_enlarged_image():
    from torchvision.transforms.v2 import functional as TF

    from methods.lift import five_crop_ensemble

    class Runtime:
        @staticmethod
        def autocast(evaluation=False):
            import contextlib
            return contextlib.nullcontext()

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    images = torch.randn(2, 3, 8, 8)
    logits, about = five_crop_ensemble(network, [(images, torch.tensor([0, 1]))], Runtime, {"lift_tte_expand": 2})
    larger = F.interpolate(images, size=(10, 10), mode="bilinear", antialias=True, align_corners=False)
    crops = [larger[:, :, :8, :8], larger[:, :, :8, 2:], larger[:, :, 2:, :8], larger[:, :, 2:, 2:],
             larger[:, :, 1:9, 1:9]]
    assert all(torch.equal(a, b) for a, b in zip(TF.five_crop(larger, [8, 8]), crops))
    with torch.no_grad():
        expected = torch.stack([network(crop) for crop in crops]).mean(dim=0)
    assert about == {"crops": 5, "expand": 2} and torch.allclose(torch.as_tensor(logits), expected, atol=1e-6)
    settings = train_args.resolve({"method": "lift", "lift_module": "adaptformer", "height": 224, "width": 224})
    assert settings["lift_tte_expand"] == 24 and settings.get("lift_prompt_length") is None
    assert train_args.resolve({"method": "lift", "lift_module": "vpt_deep", "height": 32,
                               "width": 32})["lift_tte_expand"] == round(24 * 32 / 224)


@pytest.fixture(scope="module")
def lift_run(tmp_path_factory):
    from conftest import make_dataset

    folder = tmp_path_factory.mktemp("lift-run")
    make_dataset(folder / "a_datasets")
    (folder / "logs").mkdir()
    save_clip(folder)
    result = call("1_train.py", *TRAIN, "--epochs=2", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


def fixture_run(folder):
    """The run ``lift_run`` trained (2 epochs; other tests add 1-epoch runs beside it)."""
    (run_dir,) = [run for run in (folder / "logs" / "clip-clip" / "tiny" / "LA").iterdir()
                  if json.loads((run / "config.json").read_text())["args"]["epochs"] == 2]
    return run_dir


def test_a_lift_run_trains_tests_and_predicts_from_its_files(lift_run):
    folder, result = lift_run
    assert re.search(r"skipped \d+ weight\(s\) that do not fit: .* and \d+ more", result.stdout)  # the text tower's, in part
    run_dir = fixture_run(folder)
    config = json.loads((run_dir / "config.json").read_text())["args"]
    assert config["lift_module"] == "adaptformer" and config["lift_scale"] == 25.0 and config["lift_tte_expand"] == 3
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    assert state["model_config"]["text_cfg"] == LIFT_CLIP["text_cfg"]
    assert "tuner.adaptformer.0.scale" in state["model"] and state["model"]["head.weight"].shape == (3, WIDTH)
    tested = call("2_test.py", "--model=clip:clip.json", "--dataset=tiny", "--objective=LA",
                  f"--datetime={run_dir.name}", "--posthoc_tau=auto", "--tau_norm=auto", cwd=folder)  # as a plan does
    assert tested.returncode == 0, tested.stderr
    assert "--tau_norm auto: left out, a cosine classifier's class vectors all have unit norm" in tested.stderr
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert metrics["ensemble"]["crops"] == 5 and 0 <= metrics["ensemble"]["balanced_acc"] <= 100
    images = folder / "a_datasets" / "tiny" / "test" / "cat"
    predicted = call("predict.py", "--model=clip:clip.json", "--dataset=tiny", "--objective=LA",
                     f"--datetime={run_dir.name}", "--images", images, "--out", folder / "p.csv", cwd=folder)
    assert predicted.returncode == 0, predicted.stderr
    assert len((folder / "p.csv").read_text().splitlines()) == 1 + len(list(images.glob("[0-9]*")))


@pytest.mark.parametrize("flags, message", [
    (["--model=timm:test_resnet"], "--method lift fine-tunes a CLIP image encoder"),
    (["--normed_head"], "--method lift has its own cosine classifier"),
    (["--lift_module=vpt_deep", "--lift_bottleneck=4"], "--lift_bottleneck sizes adaptformer, adapter, lora, not"),
    (["--lift_prompt_length=4"], "--lift_prompt_length sizes vpt_shallow and vpt_deep"),
    (["--pretrained=absent.pth"], "--pretrained: no file absent.pth"),
    (["--mix=mixup"], "--method lift trains with a network, views and steps of its own: it does not go with --mix"),
    (["--objective=LDAM"], "it does not go with --normed_head (which --objective LDAM sets)"),
    (["--maxnorm=0.1"], "LIFT's cosine classifier has unit norms already"),
    (["--init_from=somewhere"], "would replace the classifier of --init_from: add --reinit_head, or drop --init_from"),
])
def test_refusals_are_one_line(lift_run, flags, message):
    folder, _ = lift_run
    result = call("1_train.py", *TRAIN, "--epochs=1", *flags, cwd=folder)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]


def test_a_clip_whose_blocks_lift_does_not_run_is_one_line(lift_run):
    folder, _ = lift_run
    config = json.loads(json.dumps(LIFT_CLIP))
    config["vision_cfg"]["patch_dropout"] = 0.5
    (folder / "dropout.json").write_text(json.dumps(config))
    result = call("1_train.py", *TRAIN, "--epochs=1", "--model=clip:dropout.json", cwd=folder)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "runs open_clip's plain ViT blocks as LIFT's code does" in lines[0]


def test_text_features_refuse_what_they_cannot_read():
    """Another tokenizer's vocabulary, and a config file without published weights, in one ValueError each."""
    from b_models.foundation import clip_text_features

    other = {**LIFT_CLIP, "text_cfg": {**LIFT_CLIP["text_cfg"], "vocab_size": 64}}
    with pytest.raises(ValueError, match="a vocabulary of 64 tokens; the text features are read with OpenAI's BPE"):
        clip_text_features("clip:x.json", other, "weights.pth", ["a photo of a cat."])
    with pytest.raises(ValueError, match="names no published weights: give --pretrained FILE"):
        clip_text_features("clip:x.json", LIFT_CLIP, "imagenet", ["a photo of a cat."])


def test_weights_without_a_text_tower_are_one_line(lift_run):
    folder, _ = lift_run
    from safetensors.torch import save_file

    state = torch.load(folder / "clip.pth", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items() if k.startswith("visual.")}, folder / "tower.safetensors")
    result = call("1_train.py", *TRAIN, "--epochs=1", "--pretrained=tower.safetensors", cwd=folder)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "holds no text tower of --model clip:" in lines[0] and "give the whole CLIP state dict" in lines[0]


def test_the_class_mean_start_is_each_class_mean_feature_without_the_module(clip_folder):
    from types import SimpleNamespace

    from methods.lift import Lift

    model, args = lift_network(clip_folder[0], "vpt_deep", "--lift_init=class_mean")
    torch.manual_seed(0)
    images, labels = torch.randn(7, 3, 32, 32), torch.tensor([0, 2, 2, 0, 2, 0, 0])
    stream = SimpleNamespace(unaugmented=lambda: zip(images.split(3), labels.split(3)))
    Lift(model, len(CLASSES), [4, 0, 3], args).start(model, CLASSES, args, stream)
    with torch.no_grad():
        features = model.eval().features(images, use_tuner=False)
        with_prompts = model.features(images)
    assert not torch.allclose(features, with_prompts, atol=1e-3)  # the prompts change the features: left out here
    for label in (0, 2):
        expected = F.normalize(features[labels == label].mean(dim=0), dim=0)
        assert torch.allclose(model.head.weight[label], expected, atol=1e-5)
    assert torch.equal(model.head.weight[1], torch.zeros(WIDTH))  # a class without images: no direction


def test_a_class_mean_start_needs_no_text_tower(lift_run):
    folder, _ = lift_run
    from safetensors.torch import save_file

    state = torch.load(folder / "clip.pth", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items() if k.startswith("visual.")}, folder / "tower2.safetensors")
    result = call("1_train.py", *TRAIN, "--epochs=1", "--pretrained=tower2.safetensors", "--lift_init=class_mean",
                  "--lift_module=none", cwd=folder)
    assert result.returncode == 0, result.stderr


def test_a_plan_finds_a_run_of_a_config_file_current(lift_run, monkeypatch):
    """The run records its config file by absolute path, the plan passes it relative: the same model, so the run is
    reused (resumed, evaluated), not trained again."""
    folder, _ = lift_run
    monkeypatch.chdir(folder)
    run_dir = fixture_run(folder)
    assert runs.differences(run_dir, [*TRAIN, "--epochs=2"]) == []
    assert runs.differences(run_dir, [*TRAIN, "--epochs=2", "--lift_module=lora"]) == ["lift_module"]
    # The same file in another checkout (a fresh clone elsewhere): the same architecture, so the same model; the file
    # changed there: another model
    (folder / "elsewhere").mkdir(exist_ok=True)
    (folder / "elsewhere" / "clip.json").write_text((folder / "clip.json").read_text())
    moved = [*TRAIN, "--epochs=2", "--model=clip:elsewhere/clip.json"]
    assert json.loads((run_dir / "config.json").read_text())["model_config"] == LIFT_CLIP
    assert runs.differences(run_dir, moved) == []
    deeper = json.loads(json.dumps(LIFT_CLIP))
    deeper["vision_cfg"]["layers"] = 3
    (folder / "elsewhere" / "clip.json").write_text(json.dumps(deeper))
    assert runs.differences(run_dir, moved) == ["model"]
    text = (run_dir / "config.json").read_text()  # a run from before model_config: by path, or by both files' contents
    (run_dir / "config.json").write_text(json.dumps({k: v for k, v in json.loads(text).items() if k != "model_config"}))
    try:
        assert runs.differences(run_dir, [*TRAIN, "--epochs=2"]) == []
        assert runs.differences(run_dir, [*TRAIN, "--epochs=2", "--model=clip:elsewhere/clip.json"]) == ["model"]
        (folder / "elsewhere" / "clip.json").write_text((folder / "clip.json").read_text())  # both here, the same
        assert runs.differences(run_dir, [*TRAIN, "--epochs=2", "--model=clip:elsewhere/clip.json"]) == []
    finally:
        (run_dir / "config.json").write_text(text)
