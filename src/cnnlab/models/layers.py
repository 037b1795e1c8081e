"""Small pieces the families share: activations by name and the spatial-size bookkeeping."""
from __future__ import annotations

import torch.nn as nn

ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def small_input(shape: tuple, stem: str, threshold: int = 64) -> bool:
    """CIFAR-style stem (no early downsampling) for small images, ImageNet stem for large ones."""
    if stem != "auto":
        return stem == "cifar"
    return min(shape[1], shape[2]) < threshold
