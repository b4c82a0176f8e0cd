"""The CIFAR ResNets of He et al. (2016, section 4.2): ResNet-20, 32, 44, 56 and 110.

A 3x3 stem with 16 channels, three stages of ``n`` basic blocks with 16, 32 and 64
channels (``depth = 6n + 2``), global average pooling and one linear layer.
Shortcuts are parameter-free (the paper's option A): where a block halves the
resolution and doubles the channels, the input is subsampled by 2 and padded
with zero channels.  ResNet-32 has about 0.46 M parameters, the network of
Cao et al. (2019) and most CIFAR-LT papers.  Registry indices 42-46.
"""
import torch.nn as nn

from b_models.blocks import BasicBlock


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2, not {depth}")
        blocks = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stages += [BasicBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1, "zero_pad")
                       for i in range(blocks)]
            in_planes = planes
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def ResNet20(num_classes=10):
    return CifarResNet(20, num_classes)


def ResNet32(num_classes=10):
    return CifarResNet(32, num_classes)


def ResNet44(num_classes=10):
    return CifarResNet(44, num_classes)


def ResNet56(num_classes=10):
    return CifarResNet(56, num_classes)


def ResNet110(num_classes=10):
    return CifarResNet(110, num_classes)
