"""tables.py: the result tables of docs/results.md and the README are what the committed run records give."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import tables
from conftest import ROOT
from utils import UserError, run_cli


def tables_py(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "tables.py"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable})


def test_the_committed_tables_are_what_the_committed_records_give(capsys):
    """The regeneration test: it reads results/ only (nothing trains), and fails when a table of docs/results.md or
    the README differs from what the records give.  Run in this process (tables.py runs as a real process in
    test_an_unknown_table_is_one_error_line), so the groups it summarises stay cached for the next tests here."""
    status = run_cli(tables.main, tables.get_args_parser(), ["--check"])
    printed = capsys.readouterr()
    assert status == 0, printed.out + printed.err
    assert "docs/results.md: every table is what the records give" in printed.out
    assert "README.md: every table is what the records give" in printed.out


def test_an_edited_number_is_caught_and_regenerated(tmp_path, capsys):
    """On the cheapest committed table (LIFT's side-by-side, one JSON file): the check works the same for all."""
    records = tables.Records(ROOT / "results", ())
    body = tables.TABLES["lift-side-by-side"](records)
    assert "| adaptformer | yes |" in body
    edited = body.replace("| adaptformer | yes |", "| adaptformer | no |", 1)
    document = tmp_path / "page.md"
    page = "# A page\n\n<!-- table: lift-side-by-side -->\n{}<!-- end -->\n\nprose after\n"
    document.write_text(page.format(edited))
    checked = tables.main(tables.get_args_parser().parse_args(["--check", str(document)]))
    assert checked == 1 and "lift-side-by-side" in capsys.readouterr().out and document.read_text() == page.format(edited)
    assert tables.regenerate(document.read_text(), records) == page.format(body)


def test_an_unknown_table_is_one_error_line(tmp_path):
    document = tmp_path / "page.md"
    document.write_text("<!-- table: nonsense -->\n| a |\n<!-- end -->\n")
    result = tables_py(document)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "nonsense" in result.stderr
    assert document.read_text() == "<!-- table: nonsense -->\n| a |\n<!-- end -->\n"


def test_every_row_of_the_tables_is_a_row_the_plan_trains():
    """The objectives and methods tables name their rows as 3_run.sh writes them: each is a row of PLAN=fmnist-lt
    (its default rows or OBJECTIVES=baselines), so `bash results/campaign.sh` trains every run they show."""
    trained = set()
    for objectives in (None, "baselines"):
        environment = {**os.environ, "PYTHON": sys.executable, "PLAN": "fmnist-lt", "TAGS": "1"}
        if objectives:
            environment["OBJECTIVES"] = objectives
        done = subprocess.run(["bash", str(ROOT / "3_run.sh")], env=environment, capture_output=True, text=True,
                              cwd=ROOT / "tests", timeout=120)
        assert done.returncode == 0, done.stderr
        trained |= {line.split("\t")[3] for line in done.stdout.splitlines()}
    missing = [row.spec for row in (*tables.OBJECTIVE_ROWS, *tables.METHOD_ROWS) if row.spec not in trained]
    assert not missing


def test_the_transfer_rows_are_the_transfer_plans_rows():
    """The transfer table shows exactly the rows results/transfer.sh's PLAN=transfer trains, in order."""
    environment = {**os.environ, "PYTHON": sys.executable, "PLAN": "transfer", "TAGS": "1"}
    done = subprocess.run(["bash", str(ROOT / "3_run.sh")], env=environment, capture_output=True, text=True,
                          cwd=ROOT / "tests", timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[3] for line in done.stdout.splitlines()] == [row.spec for row in tables.TRANSFER_ROWS]
    assert {line.split("\t")[2] for line in done.stdout.splitlines()} == {"fmnist-tail"}


@pytest.mark.parametrize("short, long, reading", [
    ([-7.0, -6.0], [-2.0, -1.5], "shrinks"), ([-2.0, -1.0], [-4.0, -3.0], "grows"),
    ([-2.0, -1.0], [1.0, 0.5], "reverses"), ([-2.0, -1.0], [-1.0, -3.0], "holds")])
def test_the_schedule_reading_needs_every_seed_to_agree(short, long, reading):
    assert tables.schedule_reading(short, long) == reading


def test_a_table_leaves_out_a_record_the_plan_would_train_again(tmp_path, monkeypatch):
    """A record whose settings differ from what its row trains today (a recipe or a default changed since) is not
    shown: the plan finds it stale and trains the seed again, so its number is no longer the row's.  A record edited
    since its export is one error line."""
    row = tables.OBJECTIVE_ROWS[0]  # ERM
    (kept,) = tables.Records(ROOT / "results", (row,)).runs(row, seeds={0})
    copy = tmp_path / kept.relative_to(ROOT / "results")
    shutil.copytree(kept, copy)
    assert tables.Records(tmp_path, (row,)).runs(row) == [copy]
    plan_tags = tables.plan_tags

    def recipe_changed(*args):  # the plan's lr is 0.5 now
        return {spec: (*found[:3], [*found[3], "--lr=0.5"]) for spec, found in plan_tags(*args).items()}
    monkeypatch.setattr(tables, "plan_tags", recipe_changed)
    assert tables.Records(tmp_path, (row,)).runs(row) == []
    monkeypatch.setattr(tables, "plan_tags", plan_tags)
    config = json.loads((copy / "config.json").read_text())
    config["args"]["lr"] = 0.5
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="config.json is not the file that was recorded"):
        tables.Records(tmp_path, (row,)).runs(row)


def test_a_table_of_no_plan_row_asks_no_plan(monkeypatch):
    """Records ask 3_run.sh for a plan's tags only when a table needs one of its rows: the side-by-side tables read
    their JSON files alone."""
    def no_plan(*args):
        raise AssertionError("3_run.sh was asked for tags")
    monkeypatch.setattr(tables, "plan_tags", no_plan)
    records = tables.Records(ROOT / "results", tables.ALL_ROWS)
    assert "| adaptformer | yes |" in tables.TABLES["lift-side-by-side"](records)
    with pytest.raises(AssertionError, match="was asked for tags"):
        records.runs(tables.OBJECTIVE_ROWS[0])


def test_a_row_learned_again_under_each_prior_without_those_metrics_says_so(monkeypatch):
    """SADE's aggregation row reads what 2_test.py --test_prior all wrote; a run evaluated without it is named, not
    printed as nan."""
    class OneRun:
        def runs(self, row):
            return ["a run"]
    monkeypatch.setattr(tables, "read_metrics", lambda run, split: {"acc": 80.0})
    row = tables.Row("SADE + test-time aggregation", "ERM:--method=sade", variant="aggregated")
    text = tables.priors_table(OneRun(), rows=(row,))
    assert "nan" not in text and "SADE + test-time aggregation     1  1 of the seeds not evaluated under the priors" \
        in text and len(text.splitlines()) == 4
    priors = {name: {"aggregated": {"acc": 70.0 + k}} for k, name in enumerate(tables.stats.SHIFTED_PRIORS)}
    monkeypatch.setattr(tables, "read_metrics", lambda run, split: {"test_priors": priors})
    assert tables.priors_table(OneRun(), rows=(row,)).splitlines()[2].split()[-11:] == \
        [f"{70.0 + k:.2f}" for k in range(11)]

    class TwoRuns:  # one seed evaluated under the priors, one not: the row is that seed's, and the other is named
        def runs(self, row):
            return ["with", "without"]
    monkeypatch.setattr(tables, "read_metrics", lambda run, split: {"test_priors": priors} if run == "with" else {})
    lines = tables.priors_table(TwoRuns(), rows=(row,)).splitlines()
    assert "1 of the seeds not evaluated under the priors yet" in lines[2]
    assert lines[3].split()[4] == "1" and lines[3].split()[-11:] == [f"{70.0 + k:.2f}" for k in range(11)]
