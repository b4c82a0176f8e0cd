"""README and docs/: every command runs as written (its flags parse, plans dry-run), links resolve, the table of
objectives is the code's, and the README stays the front door."""
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

import criterion
from conftest import ROOT, make_dataset, script
from runs import model_folder

PAGES = [ROOT / "README.md", ROOT / "logs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENTRY_SCRIPTS = {"1_train.py": "1_train", "2_test.py": "2_test", "predict.py": "predict", "compare.py": "compare",
                 "data_split.py": "data_split", "records.py": "records", "tables.py": "tables", "report.py": "report",
                 "bench/authors/glmc.py": "bench/authors/glmc.py", "bench/authors/lift.py": "bench/authors/lift.py"}
PROJECT_FILES = {"get_model.py", "criterion.py", "3_run.sh", ".ci/run", ".ci/update_lock", "results/campaign.sh",
                 "results/transfer.sh"}
NOT_OURS = {"pip", "apt-get", "mkdir", "cp", "tensorboard", "dpkg", "git"}


def bash_blocks(path):
    """The text of every ```bash block of a markdown file."""
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


def commands(path):
    """Every command of the file's bash blocks as a token list: continuation lines joined, comments cut,
    ``&&`` chains split."""
    found = []
    for block in bash_blocks(path):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens:
                cut = tokens.index("&&") if "&&" in tokens else len(tokens)
                found.append(tokens[:cut])
                tokens = tokens[cut + 1:]
    return found


def check_entry_script(name, argv):
    """The flags parse as the script would parse them, and a model index names a network."""
    assert not [t for t in argv if t.startswith(("<", ">", "|"))], f"shell syntax or placeholder in {argv}"
    if name.endswith(".py"):  # a script outside the project's root modules, loaded from its file
        spec = importlib.util.spec_from_file_location(name.replace("/", "_")[:-3], ROOT / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = script(ENTRY_SCRIPTS[name])
    args = module.get_args_parser().parse_args(argv)
    if getattr(args, "model_index", None) is not None:
        model_folder(args.model_index)


DRY_RUNS_CHECKED = set()  # a plan command several pages show is dry-run once


def dry_run_plan(environment, tmp_path):
    """``3_run.sh`` with ``DRY_RUN=1``: it prints the commands it would run; those must parse too (evaluation and
    comparison name the runs training will make, so only their script is checked).  A study reads its dataset
    before it plans, so a tiny one of that name is made first."""
    key = tuple(sorted(environment.items()))
    if key in DRY_RUNS_CHECKED:
        return
    DRY_RUNS_CHECKED.add(key)
    if environment.get("PLAN") == "study":
        make_dataset(tmp_path / "a_datasets", name=environment["DATASET"])
    result = subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, **environment, "PYTHON": sys.executable, "DRY_RUN": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        tokens = shlex.split(line)
        scripts = [i for i, token in enumerate(tokens) if os.path.basename(token) in ENTRY_SCRIPTS]
        if scripts and os.path.basename(tokens[scripts[0]]) not in ("compare.py", "2_test.py", "report.py"):
            check_entry_script(os.path.basename(tokens[scripts[0]]), tokens[scripts[0] + 1:])


def check_command(tokens, tmp_path):
    environment = {}
    while tokens and re.fullmatch(r"[A-Z_]+=.*", tokens[0]):
        key, _, value = tokens.pop(0).partition("=")
        environment[key] = value
    program, *rest = tokens
    if program in NOT_OURS:
        return
    if program == "torchrun":
        while rest and rest[0].startswith("--"):
            rest.pop(0)
        program, rest = "python", rest
    if program in ("python", "python3"):
        if rest[:2] == ["-m", "pytest"]:
            return
        target, *argv = rest
        name = target.removeprefix("./")
        if name in ENTRY_SCRIPTS:
            check_entry_script(name, argv)
        else:
            assert name in PROJECT_FILES and (ROOT / name).is_file() and not argv, tokens
    elif program == "bash":
        target = rest[0].removeprefix("./")
        assert target in PROJECT_FILES and (ROOT / target).is_file(), tokens
        if target == "3_run.sh":
            dry_run_plan(environment, tmp_path)
    else:
        pytest.fail(f"a command this test does not know how to check: {' '.join(tokens)}")


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_documented_command_runs_as_written(page, tmp_path):
    for tokens in commands(page):
        check_command(list(tokens), tmp_path)


def _anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_links_point_to_files_and_headings_that_exist(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}"


def test_readme_shows_the_table_of_objectives_of_the_code():
    assert criterion.objectives_table() in (ROOT / "README.md").read_text(), \
        "run `python criterion.py` and paste its table into the README"


def test_readme_is_the_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    setup = bash_blocks(ROOT / "README.md")[0].strip().splitlines()
    assert len(setup) == 2 and all(line.startswith("pip install -r requirements-lock.txt && ") for line in setup)
    assert "bash 3_run.sh" in setup[0] and "python -m pytest -q" in setup[1]
    assert text.index("```bash") < text.index("\n## ")  # the two commands come before everything else


def test_criterion_prints_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "criterion.py")], capture_output=True, text=True, check=True)
    assert out.stdout == criterion.objectives_table()


def test_every_flag_of_the_readme_methods_table_exists():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| method | flags"):].split("\n\n")[0]
    options = {option for name in ("1_train", "2_test") for action in script(name).get_args_parser()._actions
               for option in action.option_strings}
    flags = set(re.findall(r"(--[a-z_]+)", table))
    assert len(flags) >= 12 and flags <= options, flags - options
