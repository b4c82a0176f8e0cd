"""RIDE: routing diverse distribution-aware experts (Wang et al., ICLR 2021, ``frank-xwang/RIDE-LongTailRecognition``
at ab8be5c): values and their sources in docs/recipes.md.

Stage 1 only, without distillation.  Their stage 2, the expert-assignment router, is left out: it is trained after
stage 1 with the experts frozen and only decides, per image, to skip the later experts, so it saves computation; the
prediction without it is the mean of all the experts' logits, which is what is evaluated here.
"""
import argparse

import torch
import torch.nn.functional as F

import criterion
from methods.base import Method, one_classifier
from methods.experts import multi_expert
from utils import UserError, number, positive


class RIDE(Method):
    """Several experts on a shared early network (``methods.experts``), each trained by the run's objective on its
    own logits (RIDE's LDAM-DRW is ``--objective LDAM --drw``) plus a diversity term per expert, ``factor * mean(T)^2
    * KL(softmax(mean logits / T) || softmax(expert logits / T))``, the mean distribution held fixed; a negative
    factor pushes each expert away from the ensemble.  Both terms are summed over the experts (their
    ``model/loss.py:124-247``).  From the re-weighting epoch on, which is DRW's epoch, the temperature is one per
    class, lower for the rarer classes."""

    name = "ride"
    about = "routing diverse experts (Wang et al., 2021): experts on a shared trunk, the objective and a diversity term"
    flags = {
        "ride_experts": dict(type=number(int, 1), default=3, help="RIDE: the number of experts"),
        "ride_reduce": dict(action=argparse.BooleanOptionalAction, default=True,
                            help="RIDE: each expert's later stages 3/4 as wide as the network's (their "
                                 "reduce_dimension; --no-ride_reduce: as wide)"),
        "ride_diversity": dict(type=number(float), default=-0.45,
                               help="RIDE: the diversity term's factor (their additional_diversity_factor; negative "
                                    "rewards diversity; 0 trains each expert's term on the mean logits, as theirs)"),
        "ride_temperature": dict(type=positive(float), default=1.0,
                                 help="RIDE: the diversity term's temperature (their base_diversity_temperature)"),
        "ride_reweight_factor": dict(type=number(float, 0, 1), default=0.05,
                                     help="RIDE: with --drw, from --drw_epoch on, class c's temperature is "
                                          "--ride_temperature times w_c / max w, w_c = 1 - f + f * K * n_c / N "
                                          "(their reweight_factor f)"),
    }
    experts = True

    @classmethod
    def check(cls, args, objective):
        super().check(args, objective)
        if args.maxnorm:
            one_classifier({"method": cls.name}, "--maxnorm bounds the class vectors of one classifier")
        if not args.drw and args.ride_reweight_factor != cls.flags["ride_reweight_factor"]["default"]:
            raise UserError("--ride_reweight_factor has no effect without --drw: the temperature per class starts "
                            "with deferred re-weighting")

    @classmethod
    def network(cls, model, settings, num_classes):
        try:
            return multi_expert(model, settings["ride_experts"], settings["ride_reduce"])
        except ValueError as error:
            raise UserError(f"--method {cls.name}: {error}") from None

    def __init__(self, model, num_classes, class_counts, args, seed=0):
        super().__init__(model, num_classes, class_counts, args, seed)
        self.diversity, self.base_temperature = args.ride_diversity, args.ride_temperature
        # Their diversity term reads logits that carry LDAM's s = 30 (the network multiplies its cosines by it); here
        # an objective that scales its logits (LDAM) does so inside the loss, so the term scales them itself.
        self.logit_scale = criterion.get_objective(args.objective).probability_scale(vars(args))
        # Their re-weighting epoch (160) is DRW's, and they switch together; without DRW it never comes.
        self.reweight_epoch = args.drw_epoch if args.drw else None
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        weights = num_classes * counts / counts.sum() * args.ride_reweight_factor + 1 - args.ride_reweight_factor
        self.class_temperature = (self.base_temperature * weights / weights.max()).float()  # loss.py:162-168, 234
        self.set_epoch(0)

    def set_epoch(self, epoch):
        reweighted = self.reweight_epoch is not None and epoch >= self.reweight_epoch
        self.temperature = self.class_temperature if reweighted else torch.tensor(self.base_temperature)
        self.mean_temperature = float(self.temperature.mean())

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        expert_logits = model(images, experts=True)
        mean_logits = expert_logits.mean(dim=1)
        # With no diversity term their code trains every expert's term on the mean logits (loss.py:224).
        total = sum(loss_fn(mean_logits if self.diversity == 0 else expert_logits[:, expert], labels)
                    for expert in range(expert_logits.shape[1]))
        return total + self.diversity_term(expert_logits, mean_logits), mean_logits, labels

    def diversity_term(self, expert_logits, mean_logits):
        """``factor * mean(T)^2 * sum_experts KL(p || q_expert)``, each KL the batch mean, ``p`` the softmax of the
        mean logits over ``T`` without gradient (loss.py:231-245)."""
        temperature = self.temperature.to(expert_logits.device)  # one per class, or one for all
        log_experts = F.log_softmax(criterion._as_float(expert_logits) * self.logit_scale / temperature, dim=2)
        with torch.no_grad():
            mean = F.softmax(criterion._as_float(mean_logits) * self.logit_scale / temperature, dim=1)
        divergence = F.kl_div(log_experts, mean[:, None].expand_as(log_experts), reduction="sum") / len(mean_logits)
        return self.diversity * self.mean_temperature ** 2 * divergence
