"""Networks torchvision does not ship, one file per family (for small, CIFAR-sized images), their residual block, and the classifier heads."""
