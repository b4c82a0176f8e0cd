"""2_test.py: metrics, confusion matrix and metrics file of a trained run."""
import json
import shutil

import pytest
import torch

from conftest import call, run, run_dir_of


@pytest.fixture
def trained(trained):
    """The session's runs (a private copy) and the CCE run's folder."""
    return trained, run_dir_of(trained, "CCE")


ARGS = ["--model_index=41", "--dataset=tiny", "--objective=CCE"]


def test_evaluates_test_split_and_writes_files(trained):
    root, run_dir = trained
    result = run("2_test.py", *ARGS, f"--datetime={run_dir.name}", cwd=root)  # a real process, once
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["images"] == 15
    for key in ("acc", "top5acc", "balanced_acc", "macro_f1"):
        assert 0 <= metrics[key] <= 100
    assert metrics["top5acc"] == 100.0  # 3 classes: top-5 always hits
    assert [row["class"] for row in metrics["per_class"]] == ["cat", "dog", "fox"]
    assert [row["support"] for row in metrics["per_class"]] == [5, 5, 5]
    balanced = sum(row["recall"] for row in metrics["per_class"]) / 3
    assert metrics["balanced_acc"] == pytest.approx(balanced)
    assert f"top-1 {metrics['acc']:.2f} %" in result.stdout and "balanced acc" in result.stdout
    assert "macro-F1" in result.stdout and "recall" in result.stdout
    svg = (run_dir / "confusion_matrix.svg").read_text()
    assert svg.startswith("<?xml") and "fox" in svg and "predicted class" in svg


def test_accuracy_on_valid_equals_what_the_checkpoint_recorded(trained):
    root, run_dir = trained
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    result = call("2_test.py", *ARGS, "--datetime=latest", "--split=valid", cwd=root)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "valid_metrics.json").read_text())
    assert metrics["acc"] == pytest.approx(state["acc"], abs=1e-3)
    assert metrics["balanced_acc"] == pytest.approx(state["balanced_acc"], abs=1e-3)


def test_falls_back_to_valid_with_a_warning(trained):
    root, _ = trained
    shutil.rmtree(root / "a_datasets" / "tiny" / "test")
    result = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "warning: a_datasets/tiny has no test/ split; evaluating valid/ instead" in result.stderr
    assert "valid split" in result.stdout


def test_warns_when_torch_differs_from_the_training_run(trained):
    root, run_dir = trained
    quiet = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr  # same torch: no warning
    path = next(run_dir.glob("[0-9]*.pth"))
    state = torch.load(path, weights_only=True)
    assert state["environment"]["torch"] == str(torch.__version__)
    state["environment"]["torch"] = "1.13.1+cu117"
    torch.save(state, path)
    result = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {path.name} was trained with torch 1.13.1+cu117; evaluating with torch "
                        f"{torch.__version__} may give slightly different numbers"]


def test_torch_minor_version():
    from runtime import torch_minor
    assert torch_minor("2.14.1+cu130") == (2, 14) and torch_minor("2.9.0") == (2, 9) and torch_minor("1.13.1") == (1, 13)


def test_confusion_matrix_for_many_classes(tmp_path):
    import figures as script
    classes = [f"class_{i:03d}" for i in range(100)]
    targets = torch.arange(100).repeat(3).numpy()
    script.plot_confusion_matrix(targets, targets, classes, tmp_path / "cm.svg", "100 classes")
    svg = (tmp_path / "cm.svg").read_text()
    assert "class_000" not in svg  # no unreadable labels past 30 classes
    script.plot_confusion_matrix(targets[:30] % 30, targets[:30] % 30, classes[:30], tmp_path / "cm30.svg", "30")
    assert "class_029" in (tmp_path / "cm30.svg").read_text()


def test_predictions_intervals_and_calibration_are_saved(trained):
    import numpy as np
    root, run_dir = trained
    result = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert result.returncode == 0, result.stderr
    saved = np.load(run_dir / "test_predictions.npz")
    assert saved["paths"][0] == "test/cat/0.png" and len(saved["paths"]) == 15
    assert saved["targets"].tolist() == [0] * 5 + [1] * 5 + [2] * 5 and saved["classes"].tolist() == ["cat", "dog", "fox"]
    assert saved["probs"].dtype == np.float32 and saved["probs"].shape == (15, 3)
    assert np.allclose(saved["probs"].sum(axis=1), 1, atol=1e-5)
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    predictions = saved["probs"].argmax(axis=1)
    assert metrics["acc"] == pytest.approx(100 * np.mean(predictions == saved["targets"]))
    for key in ("acc", "balanced_acc"):
        low, high = metrics[f"{key}_ci95"]
        assert low <= metrics[key] <= high
    assert 0 <= metrics["ece"] <= 100
    assert (run_dir / "reliability.svg").read_text().startswith("<?xml")
    assert f"[{metrics['acc_ci95'][0]:.2f}, {metrics['acc_ci95'][1]:.2f}]" in result.stdout


def test_posthoc_adjustment_matches_the_formula(trained):
    import numpy as np
    root, run_dir = trained
    result = call("2_test.py", *ARGS, "--datetime=latest", "--posthoc_tau=1.5", cwd=root)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    saved = np.load(run_dir / "test_predictions.npz")
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    counts = np.array(state["class_counts"], dtype=float)
    adjusted = np.log(saved["probs"].astype(float)) - 1.5 * np.log(counts / counts.sum())
    hits = adjusted.argmax(axis=1) == saved["targets"]
    assert metrics["posthoc"]["tau"] == 1.5 and metrics["posthoc"]["tau_chosen_on"] == "given"
    assert metrics["posthoc"]["acc"] == pytest.approx(100 * hits.mean(), abs=1e-9)
    assert "post-hoc logit adjustment, tau 1.5 (given)" in result.stdout


def test_posthoc_auto_chooses_tau_on_valid_only(trained, monkeypatch):
    import stats
    root, run_dir = trained
    seen = []

    def spy(logits, targets, counts, taus=stats.TAUS):
        seen.append(targets.tolist())
        return 0.7

    monkeypatch.setattr(stats, "choose_tau", spy)
    assert call("2_test.py", *ARGS, "--datetime=latest", "--posthoc_tau=auto", cwd=root).returncode == 0
    assert seen == [[0] * 6 + [1] * 6 + [2] * 6]  # valid/'s 18 images, never test/'s 15
    posthoc = json.loads((run_dir / "test_metrics.json").read_text())["posthoc"]
    assert posthoc["tau"] == 0.7 and posthoc["tau_chosen_on"] == "valid"
    refused = call("2_test.py", *ARGS, "--datetime=latest", "--posthoc_tau=auto", "--split=valid", cwd=root)
    assert refused.returncode == 2 and "cannot report valid/" in refused.stderr
    bad = call("2_test.py", *ARGS, "--datetime=latest", "--posthoc_tau=lots", cwd=root)
    assert bad.returncode == 2 and "--posthoc_tau takes a number or 'auto', got 'lots'" in bad.stderr


def test_a_failed_evaluation_leaves_the_previous_results(trained, monkeypatch):
    """Results are written to a temporary file and renamed: a write that fails half-way (a full disk) leaves the
    previous evaluation whole, and no temporary file."""
    import numpy as np
    root, run_dir = trained
    assert call("2_test.py", *ARGS, "--datetime=latest", cwd=root).returncode == 0
    names = ("test_predictions.npz", "test_metrics.json")
    before = {name: (run_dir / name).read_bytes() for name in names}

    def disk_full(file, **arrays):
        file.write(b"half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    result = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: cannot write {run_dir.relative_to(root) / 'test_predictions.npz'}: No space left on device"]
    assert {name: (run_dir / name).read_bytes() for name in names} == before
    assert not [path for path in run_dir.iterdir() if path.name.endswith(".tmp")]


def test_checkpoint_last_evaluates_last_pth_into_its_own_files(trained):
    import numpy as np
    root, run_dir = trained
    assert call("2_test.py", *ARGS, "--datetime=latest", cwd=root).returncode == 0
    result = call("2_test.py", *ARGS, "--datetime=latest", "--checkpoint=last", cwd=root)
    assert result.returncode == 0, result.stderr
    best, last = (json.loads((run_dir / name).read_text()) for name in ("test_metrics.json", "test_last_metrics.json"))
    state = torch.load(run_dir / "last.pth", weights_only=True)
    assert last["checkpoint"] == "last.pth" and last["epoch"] == state["epoch"] == 1
    assert best["checkpoint"].endswith(".pth") and best["checkpoint"] != "last.pth"
    assert np.load(run_dir / "test_last_predictions.npz")["probs"].shape == (15, 3)
    assert "test_last_metrics.json" in result.stdout


def test_evaluation_is_float32_unless_amp_eval(trained, monkeypatch):
    """Even where training runs in bfloat16 (emulated here on the CPU), 2_test's probabilities are those of a
    float32 forward pass; --amp_eval evaluates in the training precision."""
    import numpy as np
    import loader
    import runtime
    root, run_dir = trained
    original = runtime.Runtime.__init__

    def bfloat16_runtime(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.amp_dtype = torch.bfloat16

    monkeypatch.setattr(runtime.Runtime, "__init__", bfloat16_runtime)
    state = torch.load(next(run_dir.glob("[0-9]*.pth")), weights_only=True)
    model = __import__("get_model").build_network(41, 3)
    model.load_state_dict(state["model"])
    split = loader.load_splits(root / "a_datasets", "tiny", ("test",))["test"]
    images = loader.normalise(torch.stack([loader.decode_image(path, 16, 16) for path in split.paths]),
                              state["mean"], state["std"])
    with torch.no_grad():
        float32 = torch.softmax(model.eval()(images), dim=1).numpy()
    assert call("2_test.py", *ARGS, "--datetime=latest", cwd=root).returncode == 0
    assert np.allclose(np.load(run_dir / "test_predictions.npz")["probs"], float32, atol=1e-6)
    assert call("2_test.py", *ARGS, "--datetime=latest", "--amp_eval", cwd=root).returncode == 0
    assert np.abs(np.load(run_dir / "test_predictions.npz")["probs"] - float32).max() > 1e-5  # bfloat16 rounding


@pytest.mark.parametrize("classes", [3, 800])
def test_per_class_figure_has_one_mark_per_class(tmp_path, classes):
    import numpy as np
    import figures as module
    counts = np.maximum(1, (500 * np.exp(-np.arange(classes) / (classes / 5)))).astype(int)
    table = [{"class": f"c{i}", "recall": float(r)} for i, r in enumerate(np.linspace(90, 10, classes))]
    module.plot_per_class(table, counts.tolist(), tmp_path / "per_class.svg", "title")
    svg = (tmp_path / "per_class.svg").read_text()
    marks = svg[svg.index('<g id="classes">'):]
    assert marks[:marks.index("</g>")].count("<use ") == classes  # one marker per class
    assert "training images of the class (log scale)" in svg and "few:" in svg


def test_predictions_of_8142_classes_stay_small(tmp_path):
    """iNaturalist 2018: 24,426 test images x 8,142 classes would be 795 MB of probabilities; the file keeps the
    top 20 classes of each image and the true class's probability."""
    import numpy as np
    module = __import__("importlib").import_module("2_test")
    rng = np.random.default_rng(0)
    images, classes = 2000, 8142
    logits = rng.normal(0, 3, (images, classes)).astype(np.float32)
    targets = rng.integers(0, classes, images)
    probabilities, predictions = module.softmax_rows(logits)
    kept = module.kept_probabilities(np.repeat(probabilities, 13, axis=0)[:24_426], np.resize(targets, 24_426))
    assert set(kept) == {"top_classes", "top_probs", "target_probs"}
    path = tmp_path / "test_predictions.npz"
    np.savez_compressed(path, **kept)
    assert path.stat().st_size < 500 * 2**20 / 20  # far below 500 MB
    assert np.array_equal(kept["top_classes"][:images:13][:, 0], predictions[:len(kept["top_classes"][:images:13])])
    small = module.kept_probabilities(probabilities[:10, :100], targets[:10] % 100)
    assert set(small) == {"probs"}


def test_confusion_matrix_only_where_readable(trained, monkeypatch):
    root, run_dir = trained
    module = __import__("importlib").import_module("2_test")
    monkeypatch.setattr(module, "MAX_CONFUSION_CLASSES", 2)  # tiny's 3 classes stand for thousands
    result = call("2_test.py", *ARGS, "--datetime=latest", cwd=root)
    assert result.returncode == 0, result.stderr
    assert not (run_dir / "confusion_matrix.svg").exists() and (run_dir / "per_class.svg").is_file()
    assert "(no confusion_matrix.svg: a matrix of 3 classes is unreadable; per_class.svg shows each class)" in result.stdout


def test_test_prior_all_writes_the_eleven_priors_and_the_figure(trained):
    trained, run_dir = trained
    result = call("2_test.py", *ARGS, "--datetime=latest", "--test_prior=all", "--posthoc_tau=auto", cwd=trained)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    priors = metrics["test_priors"]
    assert list(priors) == list(__import__("stats").SHIFTED_PRIORS)
    assert priors["uniform"]["acc"] == pytest.approx(metrics["balanced_acc"])  # tiny's test set is balanced
    assert all("posthoc" in row and "acc_ci95" in row for row in priors.values())
    assert (run_dir / "prior_shift.svg").is_file() and "forward-50" in result.stdout
    one = call("2_test.py", *ARGS, "--datetime=latest", "--test_prior=backward-5", cwd=trained)
    assert one.returncode == 0 and list(json.loads((run_dir / "test_metrics.json").read_text())["test_priors"]) == [
        "backward-5"]
    bad = call("2_test.py", *ARGS, "--datetime=latest", "--test_prior=sideways", cwd=trained)
    assert bad.returncode == 2 and "--test_prior: unknown test prior" in bad.stderr


def test_flip_tta_averages_an_image_and_its_mirror_and_keeps_the_plain_evaluation(trained):
    """--tta flip (weight balancing's evaluation): the logits are the mean of the image's and its mirror's, and the
    results go beside the plain evaluation's, which stay as they were."""
    import numpy as np

    from conftest import script
    from runtime import Runtime
    test = script("2_test")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 2 * 4, 3))
    images = torch.randn(5, 3, 2, 4)
    logits, targets = test.infer(model, [(images, torch.arange(5) % 3)], Runtime(), tta="flip")
    expected = (model(images) + model(images.flip(3))) / 2
    assert np.allclose(logits, expected.detach().numpy(), atol=1e-6) and list(targets) == [0, 1, 2, 0, 1]
    assert not np.allclose(logits, model(images).detach().numpy(), atol=1e-3)  # the mirror counts
    root, run_dir = trained
    assert call("2_test.py", *ARGS, f"--datetime={run_dir.name}", cwd=root).returncode == 0
    plain = (run_dir / "test_metrics.json").read_bytes()
    result = call("2_test.py", *ARGS, f"--datetime={run_dir.name}", "--tta=flip", "--posthoc_tau=auto", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "test_flip_metrics.json, test_flip_predictions.npz" in result.stdout
    flipped = json.loads((run_dir / "test_flip_metrics.json").read_text())
    assert flipped["tta"] == "flip" and "posthoc" in flipped
    assert (run_dir / "test_metrics.json").read_bytes() == plain
