"""Networks for small images (CIFAR-sized inputs) that torchvision does not ship."""
