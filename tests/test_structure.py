"""The layout's rules: entry scripts never import one another; utils.py imports no project module and the other
bottom modules only utils.py."""
import ast
import subprocess
import sys

import pytest

from conftest import ROOT, project_files

ENTRY_SCRIPTS = {"1_train", "2_test", "predict", "compare", "data_split"}
SOURCES = [path for path in project_files(".py") if "tests" not in path.relative_to(ROOT).parts]
PROJECT_MODULES = {path.stem for path in SOURCES if path.parent == ROOT} | {"b_models"}
BOTTOM = ("utils.py", "runtime.py", "criterion.py", "stats.py", "optimisation.py")


def imported(path):
    """Top-level names of every module ``path`` imports, by ``import``, ``from ... import``, ``importlib``'s
    ``import_module("...")`` or ``__import__("...")``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in ("import_module", "__import__"):
                names.add(str(node.args[0].value).split(".")[0])
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_imports_an_entry_script(path):
    assert not imported(path) & ENTRY_SCRIPTS


@pytest.mark.parametrize("name", BOTTOM)
def test_bottom_modules_import_no_project_module(name):
    allowed = set() if name == "utils.py" else {"utils"}
    assert not imported(ROOT / name) & (PROJECT_MODULES - allowed)


def test_the_checker_sees_importlib():
    source = ROOT / "tests" / "_probe.py"
    try:
        source.write_text("import importlib\nimportlib.import_module('2_test')\n")
        assert imported(source) == {"importlib", "2_test"}
    finally:
        source.unlink()


def test_a_virtual_environment_in_the_checkout_is_not_the_project(tmp_path):
    """``python -m venv .venv`` inside the project folder (the common convention): its files are not the project's."""
    venv = ROOT / "probe_env"  # a name .gitignore does not list
    (venv / "lib").mkdir(parents=True)
    try:
        (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
        (venv / "lib" / "third_party.py").write_text("import importlib\nimportlib.import_module('1_train')\n")
        assert not [path for path in project_files(".py") if venv in path.parents]
    finally:
        import shutil
        shutil.rmtree(venv)


def test_what_a_plan_asks_before_training_imports_no_torch():
    """3_run.sh names its run folders (b_models/names.py) and checks a dataset name (utils.name_argument) in Python
    before anything trains, dry runs included: neither may import torch, which takes seconds to start."""
    code = ("import sys; from b_models import names; import utils; utils.name_argument('DATASET')('my data'); "
            "print(names.folder_name(41), 'torch' in sys.modules)")
    checked = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert checked.stdout.split() == ["SimpleCNN", "False"], checked.stderr
