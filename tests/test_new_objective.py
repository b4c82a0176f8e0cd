"""Adding a loss is one class plus one entry in criterion.OBJECTIVES: every script then knows it."""
import json

import pytest
import torch.nn.functional as F

import criterion
import runs
from conftest import FAST, files_under, script
from utils import run_cli


class HalvedCrossEntropy(criterion.Loss):
    """A toy loss: cross entropy of the halved logits, with label smoothing."""
    calls = 0

    def __init__(self, label_smoothing):
        super().__init__()
        self.label_smoothing = label_smoothing

    def per_sample(self, logits, targets):
        HalvedCrossEntropy.calls += 1
        return F.cross_entropy(logits / 2, targets, reduction="none", label_smoothing=self.label_smoothing)


TOY = criterion.Objective("TOY", lambda num_classes, class_counts, label_smoothing: HalvedCrossEntropy(label_smoothing),
                          "`CE(z / 2)`", "a test", options=("label_smoothing",))


def main_of(name, argv):
    module = script(name)
    return run_cli(module.main, module.get_args_parser(), [str(a) for a in argv])


def test_a_toy_loss_trains_evaluates_and_is_grouped(workdir, monkeypatch, capsys):
    monkeypatch.setitem(criterion.OBJECTIVES, "TOY", TOY)
    monkeypatch.chdir(workdir)
    for extra in (["--seed=0"], ["--seed=1"], ["--seed=0", "--label_smoothing=0.1"]):
        assert main_of("1_train", [*FAST, "--epochs=1", "--objective=TOY", *extra]) == 0
    assert HalvedCrossEntropy.calls > 0
    names = runs.list_runs("logs", "SimpleCNN", "tiny", "TOY")
    assert len(names) == 3
    for name in names:
        assert main_of("2_test", ["--model_index=41", "--dataset=tiny", "--objective=TOY", f"--datetime={name}"]) == 0
        metrics = json.loads((workdir / "logs" / "SimpleCNN" / "tiny" / "TOY" / name / "test_metrics.json").read_text())
        assert metrics["images"] == 15
    capsys.readouterr()
    assert main_of("compare", ["--dataset=tiny", "--model_index=41", "--objectives", "TOY",
                               "--datetime=all"]) == 0
    rows = {line.split("  ")[0].strip(): line.split() for line in capsys.readouterr().out.splitlines()[1:3]}
    assert set(rows) == {"TOY label_smoothing=0", "TOY label_smoothing=0.1"}
    assert rows["TOY label_smoothing=0"][2:4] == ["2", "test"] and rows["TOY label_smoothing=0.1"][2:4] == ["1", "test"]


def test_an_unknown_objective_is_refused_everywhere(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    for name, argv in (("1_train", [*FAST, "--objective=TOY"]),
                       ("2_test", ["--model_index=41", "--dataset=tiny", "--objective=TOY", "--datetime=latest"]),
                       ("compare", ["--dataset=tiny", "--model_index=41", "--objectives", "TOY"])):
        assert main_of(name, argv) == 2
        assert "invalid choice: 'TOY'" in capsys.readouterr().err
    assert files_under(workdir / "logs") == []


@pytest.mark.parametrize("argv, warning", [
    (["--objective=ERM", "--la_tau=2"], "--la_tau has no effect: it is not read by ERM"),
    (["--objective=ERM", "--cb_beta=0.99"], "--cb_beta has no effect: it is not read without --class_balanced"),
    (["--objective=LDAM", "--drw_epoch=1"], "--drw_epoch has no effect: it is not read without --drw"),
])
def test_options_the_objective_does_not_read_are_warned_about(argv, warning):
    train = script("1_train")
    with pytest.warns(UserWarning, match=warning):
        train.check_args(train.get_args_parser().parse_args([*FAST, *argv]))


def test_options_the_objective_reads_give_no_warning(recwarn):
    train = script("1_train")
    for argv in (["--objective=CB", "--cb_beta=0.99"], ["--objective=ERM", "--class_balanced", "--cb_beta=0.99"],
                 ["--objective=LDAM", "--drw", "--drw_epoch=1"], ["--objective=LA", "--la_tau=2"]):
        train.check_args(train.get_args_parser().parse_args([*FAST, *argv]))
    assert not [w for w in recwarn if "has no effect" in str(w.message)]


def test_the_table_decides_head_scale_and_complement_step():
    train = script("1_train")
    parse = train.get_args_parser().parse_args
    ldam = train.check_args(parse([*FAST, "--objective=LDAM", "--drw"]))
    assert ldam.normed_head is True and train.head_scale(ldam) == 1.0 and ldam.drw_epoch == 0  # lrstep 1 1: the last-but-one stage starts at 0
    with pytest.warns(UserWarning, match="--drw has no effect"):
        focal = train.check_args(parse([*FAST, "--objective=FL", "--normed_head", "--drw"]))
    assert train.head_scale(focal) == 30.0 and focal.drw_epoch is None  # FL reads no --drw
    _, complement = train.build_criterion(train.check_args(parse([*FAST, "--objective=COT"])), 3, [5, 5, 5])
    assert isinstance(complement, criterion.ComplementEntropy)
    assert train.build_criterion(focal, 3, [5, 5, 5])[1] is None
    assert criterion.OBJECTIVES["LDAM"].probability_scale({"ldam_scale": 12.0}) == 12.0
    assert criterion.OBJECTIVES["LDAM"].probability_scale({}) == 30.0
    assert criterion.OBJECTIVES["BS"].probability_scale({"ldam_scale": 12.0}) == 1.0


def test_every_entry_builds_a_loss_from_its_own_options():
    for name, entry in criterion.OBJECTIVES.items():
        assert set(entry.options) <= set(criterion.OPTIONS), name
        loss = criterion.get_criterion(name, 4, class_counts=[40, 20, 10, 5])
        assert isinstance(loss, criterion.Loss), name
    with pytest.raises(ValueError, match="unknown option"):
        criterion.get_criterion("ERM", 4, gamma=2)


def test_drw_starts_at_80_percent_of_a_cosine_run_and_warns_when_it_never_starts():
    train = script("1_train")
    parse = train.get_args_parser().parse_args
    cosine = train.check_args(parse([*FAST, "--objective=LDAM", "--drw", "--schedule=cosine", "--epochs=90"]))
    assert cosine.drw_epoch == 72
    with pytest.warns(UserWarning, match="--drw starts at epoch 121, after the last of the 90 epochs"):
        train.check_args(parse([*FAST, "--objective=LDAM", "--drw", "--drw_epoch=120", "--epochs=90"]))
