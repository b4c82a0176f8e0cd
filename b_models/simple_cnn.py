"""A small, fast CNN for CPU demos and tests (about 0.1 M parameters, any input of 4 px and up)."""
import torch.nn as nn


def conv_bn(in_channels, out_channels, stride):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SimpleCNN(nn.Module):
    def __init__(self, num_classes=10, width=32):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, width, 1), conv_bn(width, width, 1),
            conv_bn(width, 2 * width, 2), conv_bn(2 * width, 2 * width, 1),
            conv_bn(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
