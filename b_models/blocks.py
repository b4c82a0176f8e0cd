"""The residual basic block (He et al., 2016) that both ResNet families here are built from."""
import torch.nn as nn
import torch.nn.functional as F


class ZeroPadShortcut(nn.Module):
    """The paper's option A: ``x[:, :, ::2, ::2]`` with ``extra`` zero channels split over both sides."""

    def __init__(self, extra_channels):
        super().__init__()
        self.before, self.after = extra_channels // 2, extra_channels - extra_channels // 2

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.before, self.after))


def shortcut(in_planes, out_planes, stride, kind="projection"):
    """Identity where the shape stays; else a 1x1 convolution with batch norm (option B, ``projection``) or
    parameter-free subsampling and zero channels (option A, ``zero_pad``)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    if kind == "zero_pad":
        return ZeroPadShortcut(out_planes - in_planes)
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (``shortcut``: see ``shortcut``)."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, shortcut_kind="projection"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut(in_planes, planes * self.expansion, stride, shortcut_kind)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))
