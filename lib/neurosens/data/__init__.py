"""Datasets as tensors of images in [0, 1]: Fashion-MNIST, CIFAR-10, ImageNet-200."""
