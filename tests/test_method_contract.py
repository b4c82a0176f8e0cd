"""A method is one file: a toy method written into a copy of the project, with one line added to the registry,
trains, is evaluated (with an evaluation of its own) and compared; no other file of the copy changes."""
import hashlib
import json
import shutil
import subprocess
import sys

from conftest import FAST, ROOT, project_files

TOY = '''"""A toy method: the objective on the mean logits of two views of each image, scaled by --toy_weight."""
from methods.base import Method
from utils import positive


class Toy(Method):
    name = "toy"
    about = "the objective on the mean logits of two views (a test)"
    flags = {"toy_weight": dict(type=positive(float), default=1.0, help="toy: factor on the loss")}
    views = ("train", "train")

    def __init__(self, model, num_classes, class_counts, args, seed=0):
        super().__init__(model, num_classes, class_counts, args, seed)
        self.weight = args.toy_weight

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        logits = (model(images[0]) + model(images[1])) / 2
        return self.weight * loss_fn(logits, labels), logits, labels

    @classmethod
    def evaluations(cls, settings):
        def halved(model, stream, runtime, settings, class_prior=None):
            import torch

            with torch.no_grad():
                logits = torch.cat([model(images) for images, _ in stream]) / 2
            return logits.numpy(), {"factor": 0.5}

        return {"halved": halved}
'''


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_toy_method_is_one_file_and_one_registry_line(workdir, tmp_path):
    copy = tmp_path / "copy"
    originals = {}
    for path in project_files(".py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] == "tests":
            continue
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy / relative)
        originals[relative] = digest(path)
    (copy / "methods" / "toy.py").write_text(TOY)
    registry = copy / "methods" / "__init__.py"
    lines = registry.read_text().splitlines(keepends=True)
    at = lines.index("REGISTRY = (\n")
    registry.write_text("".join(lines[:at + 1] + ['    "toy",\n'] + lines[at + 1:]))

    def run(name, *argv):
        result = subprocess.run([sys.executable, str(copy / name), *map(str, argv)], cwd=workdir,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return result

    assert "--toy_weight" in run("1_train.py", "--help").stdout
    for extra in (["--toy_weight=2"], ["--seed=1", "--toy_weight=2"]):
        run("1_train.py", *FAST, "--epochs=1", "--method=toy", *extra)
    run("1_train.py", *FAST, "--epochs=1")  # the same objective without the method
    parent = workdir / "logs" / "SimpleCNN" / "tiny" / "ERM"
    names = sorted(folder.name for folder in parent.iterdir())
    settings = [json.loads((parent / name / "config.json").read_text())["args"] for name in names]
    assert [(s["method"], s["toy_weight"]) for s in settings] == [("toy", 2.0), ("toy", 2.0), (None, None)]
    for name in names:
        run("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=ERM", f"--datetime={name}")
    metrics = json.loads((parent / names[0] / "test_metrics.json").read_text())
    assert metrics["halved"]["factor"] == 0.5  # the method's own evaluation, beside the plain one
    assert metrics["halved"]["acc"] == metrics["acc"]  # halved logits predict the same classes
    out = run("compare.py", "--dataset=tiny", "--model_index=41", "--objectives", "ERM", "--datetime=all").stdout
    rows = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()[1:3]}
    assert set(rows) == {"ERM", "ERM TOY"} or set(rows) == {"ERM", "ERM + TOY"}, out
    assert [row for label, row in rows.items() if "TOY" in label][0][2] == "2"  # two seeds grouped
    changed = [str(relative) for relative, sha in originals.items() if digest(copy / relative) != sha]
    assert changed == ["methods/__init__.py"]
    added = set(registry.read_text().splitlines()) - set((ROOT / "methods" / "__init__.py").read_text().splitlines())
    assert added == {'    "toy",'}


def test_a_multi_expert_run_refuses_one_classifier_operations_in_one_line(workdir):
    """RIDE's network has a classifier per expert: tau-norm, MaxNorm and a second stage from it say so in one line
    (exit 2, no traceback); its plain evaluation and the calibration and per-class figures work on the mean."""
    from conftest import call

    trained = call("1_train.py", *FAST, "--epochs=1", "--objective=LDAM", "--drw", "--method=ride", cwd=workdir)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = (workdir / "logs" / "SimpleCNN" / "tiny" / "LDAM").iterdir()
    evaluated = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM", "--datetime=latest",
                     cwd=workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    assert all((run_dir / name).is_file() for name in ("test_metrics.json", "reliability.svg", "per_class.svg"))
    refused = [
        call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM", "--datetime=latest",
             "--tau_norm=1", cwd=workdir),
        call("1_train.py", *FAST, "--epochs=1", "--objective=LDAM", "--drw", "--method=ride", "--maxnorm=0.1",
             cwd=workdir),
        call("1_train.py", *FAST, "--epochs=1", f"--init_from={run_dir}", "--freeze_backbone", "--reinit_head",
             cwd=workdir),
    ]
    for result, words in zip(refused, ("tau-norm", "--maxnorm", "--init_from")):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert words in lines[0] and "experts" in lines[0], lines[0]
    with_tau_norm_auto = call("2_test.py", "--model_index=41", "--dataset=tiny", "--objective=LDAM",
                              "--datetime=latest", "--tau_norm=auto", cwd=workdir)
    assert with_tau_norm_auto.returncode == 0 and "tau-norm" in with_tau_norm_auto.stderr  # a plan's row: warned, left out
