"""The registry's network names by index, read without importing torch: a plan (3_run.sh) names its run folders,
logs/<name>/..., before anything trains, and a dry run trains nothing at all.  get_model.MODELS builds the networks
in this order under these names; tests/test_get_model.py keeps the two in step."""

NAMES = (
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "squeezenet1_0", "squeezenet1_1",
    "densenet121", "densenet161", "densenet169", "densenet201", "inception_v3", "googlenet",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "mobilenet_v2", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    # 35-40: networks for small (CIFAR-sized) images
    "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "SqueezeNet",
    # 41+: added by this project
    "SimpleCNN", "ResNet20", "ResNet32", "ResNet44", "ResNet56", "ResNet110",
    # 47-56: today's ImageNet networks
    "efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s", "regnet_y_400mf", "regnet_y_800mf",
    "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny", "vit_b_16", "swin_t",
)


def unknown_index(model_id):
    """The ``ValueError`` of an index the registry has not."""
    return ValueError(f"unknown model index {model_id}; valid indices are 0-{len(NAMES) - 1} "
                      "(run 'python get_model.py' for the table)")


def folder_name(model_id):
    """The log-folder name of a registry index (``SimpleCNN``) or a backbone by name (``timm-resnet18``), or a
    ``ValueError``; only a backbone by name imports its module (and torch)."""
    if isinstance(model_id, str):
        from b_models import foundation
        return foundation.folder_name(model_id)
    if not 0 <= model_id < len(NAMES):
        raise unknown_index(model_id)
    return NAMES[model_id]
