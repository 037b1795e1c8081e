"""Small pieces the families share: activations by name and the spatial-size bookkeeping."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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


class _FlattenKeepingLayout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.contiguous().flatten(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """nn.Flatten (the same numbers, in NCHW order) whose gradient keeps a channels_last map's layout.

    Flattening a channels_last map hands back an NCHW gradient, and the ReLU before it then computes
    its gradient over two layouts at once: 1.7 ms a step for fast_cnn's last 64x7x7 map on 2 cores,
    against 0.1 ms for the layout the map has. Converting the gradient once costs one copy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() == 4 and x.requires_grad and self.start_dim == 1 and self.end_dim == -1
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)):
            return _FlattenKeepingLayout.apply(x)
        return super().forward(x)


class StridedPointwiseConv(nn.Conv2d):
    """A 1x1 convolution with a stride (ResNet's projection shortcut) that never crashes on the CPU.

    torch 2.14's oneDNN weight gradient of a strided 1x1 convolution in channels_last corrupts the
    heap for some odd batch sizes with 2+ threads on AVX-512 CPUs (e.g. batch 37, 8 -> 16 channels,
    28x28: 'double free or corruption'). A 1x1 kernel with stride s reads only every s-th pixel, so on
    the CPU the input is subsampled first and convolved with stride 1: the same numbers, the same
    parameters (and state_dict keys), a kernel that works. GPUs keep the strided call.
    """

    def __init__(self, cin: int, cout: int, stride: int, bias: bool = False):
        super().__init__(cin, cout, kernel_size=1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if x.is_cuda or s == 1:
            return super().forward(x)
        return F.conv2d(x[:, :, ::s, ::s], self.weight, self.bias)
