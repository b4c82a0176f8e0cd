"""The method contract: what a training method (``--method NAME``) declares, and what the scripts ask of it.

A method is one module of this package with one subclass of ``Method``, listed in ``methods/__init__.py``'s
``REGISTRY``.  The scripts name no method: ``train_args.py`` adds each method's ``flags``, sets them to None in a
run that does not use the method (so ``config.json`` and ``compare.py`` group runs by what they did) and refuses them
without it; ``1_train.py`` calls ``check``, ``network``, the constructor, ``set_epoch`` and ``loss``; the loader
yields the ``views`` it asks for; ``runs.py`` rebuilds the network of a saved run with ``network``, so ``2_test.py``
and ``predict.py`` evaluate it; ``2_test.py`` adds the evaluations of ``evaluations`` beside the plain one.

The order in ``1_train.py``: ``check(args, objective)`` with the other flag checks; ``network(model, settings,
num_classes)`` when the network is built (also when a saved run is opened); ``Method(model, num_classes,
class_counts, args, seed)`` once the network is on its device; ``start(model, classes, args, train_stream)`` before a fresh
run's first epoch; then per epoch ``set_epoch(epoch)`` and per batch
``loss(model, images, labels, loss_fn, epoch, partner)``.
"""
from utils import UserError


class Method:
    """A training method.  Subclasses set the class attributes and override what they change."""

    name = ""  # the --method value
    about = ""  # its part of --method's help
    flags = {}  # flag name -> argparse keyword arguments (type, default, help); every name belongs to this method
    views = ("train",)  # each training image as: "train" (the run's augmentation) or a factory (height, width) ->
    # transform of one uint8 image (augment.apply_policy); with more than one, a batch's images are a list of views
    own_loss = False  # True: the method's loss replaces the objective's (the run must say --objective ERM)
    experts = False  # True: the network evaluates several classifiers (experts): one-classifier operations refuse
    before_flags = {}  # flag -> the value a run saved before the flag existed trained with (train_args.complete)
    partner = None  # the flag whose value is the sampler exponent of a second, partner stream of batches (GLMC)

    # ------------------------------------------------------------ flags and the network (class methods)

    @classmethod
    def check(cls, args, objective):
        """Refuse (``UserError``) what this method does not go with.  The default: a method trains with a network,
        views and steps of its own, so no ``--mix``, SAM, LWS, frozen backbone or complement step."""
        clashes = [flag for flag, on in (("--mix", args.mix), ("--sam_rho", args.sam_rho), ("--lws", args.lws),
                                         ("--freeze_backbone", args.freeze_backbone),
                                         (f"--objective {args.objective}", objective.complement_step)) if on]
        if clashes:
            raise UserError(f"--method {cls.name} trains with a network, views and steps of its own: it does not "
                            f"go with {', '.join(clashes)}")
        if cls.own_loss and args.objective != "ERM":
            raise UserError(f"--method {cls.name} has a loss of its own ({cls.about}): give --objective ERM")

    @classmethod
    def resolve(cls, settings):
        """Fill the defaults of this method's flags that depend on other flags (in place)."""

    @classmethod
    def network(cls, model, settings, num_classes):
        """The network this method trains, from the registry's ``model`` (built with the run's head): the same
        one, or a new one (several experts).  Also called when a saved run is opened, with its saved settings."""
        return model

    # ------------------------------------------------------------ training (an instance per run)

    def __init__(self, model, num_classes, class_counts, args, seed=0):
        import torch.nn as nn

        self.heads = nn.ModuleDict()  # modules trained beside the network: in last.pth, never in the evaluated file

    def start(self, model, classes, args, train_stream):
        """Called once before a fresh run's first epoch (not when one resumes), with the class names (the folders'
        names) and the training stream (``unaugmented()``: its images as an evaluation reads them): where a method
        sets weights from what it knows of the classes (LIFT: its classifier from their names' text features, or
        from class means)."""

    def set_epoch(self, epoch):
        """Called before each epoch (0-based)."""

    def loss(self, model, images, labels, loss_fn, epoch, partner=None):
        """The loss of one batch, and the logits and labels the running accuracy is counted on: ``(loss, logits,
        scored)``.  ``images`` is one batch or a list of views (``views``); ``model`` may be wrapped (DDP,
        compile): call it, do not read its attributes; ``loss_fn`` is the run's objective; ``partner`` is a batch
        ``(views, labels)`` of the partner stream, or None."""
        raise NotImplementedError

    # ------------------------------------------------------------ evaluation

    @classmethod
    def evaluations(cls, settings):
        """The extra evaluations ``2_test.py`` writes beside the plain one: ``{name: function}``, each called as
        ``function(model, stream, runtime, settings, class_prior=None)`` (``stream``: the split's unaugmented,
        unshuffled batches; ``class_prior``: the test prior the evaluation is for, or None) and returning the split's
        logits in file order."""
        return {}


def linear_classifier(model, method):
    """The network's classifier, a linear layer over features (``b_models.heads.find_classifier``), or a
    ``UserError``: a method that taps the features the classifier reads needs one."""
    from b_models.heads import find_classifier

    classifier = find_classifier(model)[1]
    if not hasattr(classifier, "in_features"):
        raise UserError(f"--method {method} needs a linear classifier over features; this network classifies with "
                        "a convolution")
    return classifier


def one_classifier(settings, operation):
    """Refuse ``operation`` (e.g. "--tau_norm normalises one classifier") on a run whose method evaluates several
    classifiers: one ``UserError`` line.  ``settings``: the run's saved arguments (or a namespace's vars)."""
    from methods import get

    method = get(settings.get("method"))
    if method is not None and method.experts:
        raise UserError(f"{operation}; a --method {method.name} network has several experts, each with its own "
                        "classifier, and is evaluated by their combination")
