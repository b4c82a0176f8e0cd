"""The CIFAR ResNets of He et al. (2016, section 4.2): ResNet-20, 32, 44, 56 and 110.

A 3x3 stem with 16 channels, three stages of ``n`` basic blocks with 16, 32 and 64
channels (``depth = 6n + 2``), global average pooling and one linear layer.
Shortcuts are parameter-free (the paper's option A): where a block halves the
resolution and doubles the channels, the input is subsampled by 2 and padded
with zero channels.  ResNet-32 has about 0.46 M parameters, the network of
Cao et al. (2019) and most CIFAR-LT papers.
"""
import torch.nn as nn
import torch.nn.functional as F


class ZeroPadShortcut(nn.Module):
    """Option A: ``x[:, :, ::2, ::2]`` with ``extra`` zero channels split over both sides."""

    def __init__(self, extra_channels):
        super().__init__()
        self.before, self.after = extra_channels // 2, extra_channels - extra_channels // 2

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.before, self.after))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes_shape = stride != 1 or in_planes != planes
        self.shortcut = ZeroPadShortcut(planes - in_planes) if changes_shape else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2, not {depth}")
        blocks = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stages += [BasicBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1) for i in range(blocks)]
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
