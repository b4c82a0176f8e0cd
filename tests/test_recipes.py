"""docs/recipes.md and 3_run.sh agree: every plan value in the recipe tables is what the plan's rows pass to
1_train.py, read with 1_train.py's own parser (a default counts as passed) and its method defaults."""
import json
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

import train_args
from conftest import ROOT, built_once
from utils import parse_int_list

RECIPES = ROOT / "docs" / "recipes.md"
PLANS = ("demo", "fmnist-lt", "cifar10-lt", "cifar100-lt", "imagenet-lt", "places-lt", "inat2018")


def sections():
    """``[(title, markers, source, header, rows)]``: each recipe table under a heading with a "Plan rows:" line."""
    found = []
    for part in re.split(r"\n(?=#+ )", RECIPES.read_text()):
        title = part.splitlines()[0].lstrip("# ").strip()
        plan = re.search(r"Plan rows: (.+?) \((default|baselines) rows\)", part)
        lines = [line for line in part.splitlines() if line.startswith("|")]
        if not plan or len(lines) < 3:
            continue
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
        found.append((title, re.findall(r"`([^`]+)`", plan.group(1)), plan.group(2), header, rows))
    return found


def training_commands(plan, objectives=None):
    """The 1_train.py argument lists a plan's dry run prints."""
    environment = {**os.environ, "PYTHON": sys.executable, "DRY_RUN": "1", "PLAN": plan, "LISTS": "/lists",
                   "IMAGES": "/images"}
    if objectives:
        environment["OBJECTIVES"] = objectives
    result = subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=ROOT / "tests", env=environment, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [shlex.split(line.split("1_train.py", 1)[1]) for line in result.stdout.splitlines() if "1_train.py" in line]


def settings_of(argv):
    """What 1_train.py would record for these flags (before it resolves the paths of --init_from)."""
    args = train_args.get_args_parser().parse_args(argv)
    args.lrstep = parse_int_list(args.lrstep)
    return train_args.resolve(vars(args))


def matches(value, cell):
    if isinstance(value, bool) or value is None:
        return cell == {True: "on", False: "off", None: "-"}[value]
    if isinstance(value, list):
        return value == [int(item) for item in cell.split()]
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(value), float(cell), rel_tol=1e-9)
        except ValueError:
            return False
    return str(value) == cell


CASES = [(title, markers, source, header, row) for title, markers, source, header, rows in sections() for row in rows
         if row[1].startswith("`--")]


def test_the_recipes_cover_the_methods_and_the_plans():
    titles = [title for title, *_ in sections()]
    for method in ("CCE", "COT", "FL", "CB", "LDAM-DRW", "BS", "LA", "cRT", "LWS", "Weight balancing", "mixup",
                   "CutMix", "Remix", "CMO", "Sharpness-aware", "AutoAugment"):
        assert any(title.startswith(method) for title in titles), method
    assert len(CASES) > 60


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    """``of(plan, source)``: the training commands of a plan's dry run, run once per test session (``built_once``)."""
    cache = {}

    def of(plan, source):
        if (plan, source) not in cache:
            def dry_run(folder):
                found = training_commands(plan, "baselines" if source == "baselines" else None)
                (folder / "commands.json").write_text(json.dumps(found))
            folder = built_once(tmp_path_factory, f"commands-{plan}-{source}", dry_run)
            cache[plan, source] = json.loads((folder / "commands.json").read_text())
        return cache[plan, source]
    return of


@pytest.mark.parametrize("title, markers, source, header, row", CASES,
                         ids=[f"{title.split(':')[0][:24]} {row[1]}" for title, _, _, _, row in CASES])
def test_every_plan_passes_the_recipe_value(commands, title, markers, source, header, row):
    flag = row[1].strip("`").split()[0].removeprefix("--")
    assert flag in train_args.defaults(), f"{title}: {flag} is not a flag of 1_train.py"
    checked = 0
    for plan, cell in zip(header, row):
        if plan not in PLANS or cell == "-":
            continue
        chosen = [argv for argv in commands(plan, source)
                  if all(any(token == marker or token.startswith(marker + "=") for token in argv) for marker in markers)]
        assert chosen, f"{title}: no {source} row of plan {plan} has {' '.join(markers)}"
        # "A / B": the plan has rows with each value (an official value beside one chosen on valid/), all used
        alternatives = cell.split(" / ")
        used = set()
        for argv in chosen:
            value = settings_of(argv)[flag]
            fits = [alternative for alternative in alternatives if matches(value, alternative)]
            assert fits, f"{title}, plan {plan}: --{flag} is {value!r}, the recipe says {cell}"
            used.update(fits)
        assert used == set(alternatives), f"{title}, plan {plan}: no row has --{flag} {set(alternatives) - used}"
        checked += 1
    assert checked, f"{title} {flag}: no plan column"
