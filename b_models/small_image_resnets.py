"""ImageNet's ResNet-18/34/50/101/152 (He et al., 2016) adapted to small images: a 3x3 stem without max-pool,
four stages of 64-512 channels, projection shortcuts (option B).  Registry indices 35-39."""
import torch.nn as nn
import torch.nn.functional as F

from b_models.blocks import BasicBlock, shortcut


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*(self._make_layer(block, planes, blocks, stride)
                                      for planes, blocks, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2))))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for block_stride in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, block_stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def ResNet18(num_classes=10):
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def ResNet34(num_classes=10):
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes)


def ResNet50(num_classes=10):
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


def ResNet101(num_classes=10):
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes)


def ResNet152(num_classes=10):
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes)
