"""What a second stage trains on a network trained before it (``--init_from``): the classifier alone over a frozen
backbone (cRT, weight balancing: ``--freeze_backbone``), one learned scale per class (LWS: ``--lws``), and MiSLAS's
classifier fine-tuned beside those scales at its own lr (``--lws_classifier_lr``).  Their values and sources are in
docs/recipes.md (decoupling, weight balancing, MiSLAS)."""
from b_models.heads import add_class_scales, find_classifier
from get_model import classifier_parameters


def set_trainable(model, args, num_classes):
    """Add LWS's scales to ``model`` (with ``--lws``) and freeze what the second stage does not train; returns the
    scales module or None.  Without ``--lws`` or ``--freeze_backbone`` everything stays trainable."""
    scales = add_class_scales(model, num_classes) if args.lws else None
    if scales is not None or args.freeze_backbone:
        trainable = {id(p) for p in ([scales.scales] if scales is not None else classifier_parameters(model))}
        if scales is not None and args.lws_classifier_lr:  # MiSLAS: the classifier is fine-tuned beside the scales
            trainable |= {id(p) for p in scales.classifier.parameters()}
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in trainable)
    return scales


def parameter_groups(args, model, heads=None):
    """What the optimiser trains, in groups with their lr factors, or None for one group of every trainable parameter:
    MiSLAS's classifier at ``--lws_classifier_lr`` beside the LWS scales, and a method's heads beside the network."""
    if not (heads is not None or (args.lws and args.lws_classifier_lr)):
        return None
    network = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": network}]
    if args.lws and args.lws_classifier_lr:
        classifier = {id(p) for p in find_classifier(model)[1].parameters()}
        groups = [{"params": [p for p in network if id(p) not in classifier]},  # the logged lr is the first group's
                  {"params": [p for p in network if id(p) in classifier], "lr_factor": args.lws_classifier_lr}]
    if heads is not None:
        groups.append({"params": list(heads.parameters())})
    return groups
