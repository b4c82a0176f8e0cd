"""train_args.py: a run's settings resolved (method defaults, unused methods' settings empty) and read back from runs
saved before a flag existed, as they trained."""
import argparse

import pytest

import train_args
from utils import UserError


def settings(**given):
    return train_args.resolve({**train_args.defaults(), **given})


def test_method_defaults_are_filled_and_unused_methods_are_empty():
    plain = settings()
    assert plain["mix_prob"] is None and plain["cmo_alpha"] is None and plain["bn_stats"] is None
    assert plain["maxnorm_threshold"] is None and plain["sam_bn_stats"] is None and plain["policy_fill"] is None
    assert plain["flip"] is True  # crop_flip, the default augmentation
    cmo = settings(mix="cmo")
    assert (cmo["mix_prob"], cmo["mix_off_first"], cmo["mix_off_last"], cmo["cmo_alpha"]) == (0.5, 4, 3, 1.0)
    assert settings(mix="mixup", mix_prob=0.25)["mix_prob"] == 0.25  # a given value stays
    assert settings(freeze_backbone=True)["bn_stats"] == "update"
    assert settings(maxnorm=0.1)["maxnorm_threshold"] == "relative" and settings(maxnorm=0.1)["maxnorm_every"] == "epoch"
    assert settings(sam_rho=0.1)["sam_bn_stats"] == "both"
    policy = settings(augment="randaugment")
    assert policy["flip"] is False and policy["policy_fill"] == "mean" and policy["randaugment_magnitude"] == 9


def test_runs_saved_before_the_flags_read_back_as_they_trained():
    old_cmo = train_args.complete({"mix": "cmo", "mix_prob": 1.0, "mix_alpha": 1.0, "augment": "randaugment"})
    assert (old_cmo["cmo_alpha"], old_cmo["mix_prob"], old_cmo["mix_off_first"], old_cmo["mix_off_last"]) == (2.0, 1.0, 0, 0)
    assert old_cmo["flip"] is True and old_cmo["policy_fill"] == "black"
    old_crt = train_args.complete({"freeze_backbone": True, "maxnorm": 1.0, "sam_rho": 0.8})
    assert old_crt["bn_stats"] == "frozen" and old_crt["maxnorm_threshold"] == "absolute"
    assert old_crt["maxnorm_every"] == "step" and old_crt["sam_bn_stats"] == "first"
    old_plain = train_args.complete({"mix": None, "mix_prob": 1.0, "mix_alpha": 1.0})
    new_plain = train_args.complete(settings())
    assert {k: old_plain[k] for k in ("mix_prob", "mix_alpha", "cmo_alpha")} == \
        {k: new_plain[k] for k in ("mix_prob", "mix_alpha", "cmo_alpha")}  # plain runs old and new group together


@pytest.mark.parametrize("given, message", [
    ({"mix_prob": 0.5}, "--mix_prob has no effect without --mix"),
    ({"cmo_alpha": 2.0, "mix": "mixup"}, "--cmo_alpha has no effect without --mix cmo"),
    ({"bn_stats": "frozen"}, "--bn_stats has no effect without --freeze_backbone or --lws"),
    ({"maxnorm_every": "step"}, "--maxnorm_every has no effect without --maxnorm"),
    ({"sam_bn_stats": "first"}, "--sam_bn_stats has no effect without --sam_rho"),
    ({"randaugment_magnitude": 14, "augment": "autoaugment"}, "--randaugment_magnitude has no effect without"),
    ({"flip": False, "augment": "crop_flip"}, "--no-flip contradicts --augment crop_flip"),
    ({"mix": "cmo", "mix_off_first": 3, "mix_off_last": 2, "epochs": 5}, "leave none of the 5 epochs to mix in"),
])
def test_a_method_flag_without_its_method_is_refused(given, message):
    with pytest.raises(UserError, match=message):
        train_args.check_method_flags(argparse.Namespace(**{**train_args.defaults(), **given}))
