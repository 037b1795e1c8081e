"""`model.whiten`: the first convolution as fixed whitening filters of the training images' patches.

airbench (KellerJordan/cifar10-airbench) starts its network with a convolution whose filters are
the principal components of the training images' patches, each scaled to unit variance and kept
with its negative, and does not train these filters. The rest of the network then learns from decorrelated
inputs from its first step, and the first convolution needs no gradient. On experiment=fast
(Fashion-MNIST, two epochs, when it was chosen) it gains ~0.6 points of accuracy and makes a step ~15% shorter
(docs/benchmarks.md).

The statistics come from the training split only (before augmentation, normalised as the network
sees it), never from validation or test images. The filters are stored in every checkpoint like any
weight, so resuming, cnnlab-predict and evaluation need no data to rebuild them.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from cnnlab.errors import ConfigError

MAX_IMAGES = 5_000  # as airbench: millions of patches for a covariance of at most 27x27; more only costs start-up
EPS = 1e-2  # added to each eigenvalue before scaling, so near-constant directions are not blown up


def apply_whiten(model: nn.Module, cfg, train) -> None:
    """`model.whiten=true` (cnn family): whiten the first convolution on the first MAX_IMAGES
    training images (`train`, the training split's DeviceLoader). Call right after build_model."""
    if getattr(cfg, "whiten", False):
        whiten_first_conv(model, train.normalize(train.x[:MAX_IMAGES]))


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def check_fits(conv: nn.Conv2d) -> None:
    """The filters come in +/- pairs of principal components: an even count, at most 2 x patch size."""
    dims = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    n = conv.out_channels
    if n % 2 or n > 2 * dims:  # the cnn family's convolutions are plain (stride 1, no groups or dilation)
        raise ConfigError(
            f"model.whiten=true makes the first convolution's {n} filters the +/- pairs of the training "
            f"patches' top {n // 2} principal components, so it needs an even number of filters, at most "
            f"twice the values in a patch ({conv.in_channels} channel{'s' * (conv.in_channels != 1)} x "
            f"{conv.kernel_size[0]}x{conv.kernel_size[1]} = {dims}, so at most {2 * dims}). Set the first "
            "block's first channel count in model.blocks to an even number up to that, or set "
            "model.whiten=false.")


def patch_covariance(images: torch.Tensor, kernel: tuple) -> tuple:
    """Mean and covariance of every kernel-sized patch (no padding) of float images [N, C, H, W]."""
    dims = images.shape[1] * kernel[0] * kernel[1]
    total = torch.zeros(dims, dtype=torch.float64, device=images.device)
    outer = torch.zeros(dims, dims, dtype=torch.float64, device=images.device)
    count = 0
    for chunk in images.split(512):  # a chunk's patches at a time: 5,000 3x32x32 images at once are ~0.5 GB
        patches = nn.functional.unfold(chunk.float().contiguous(), kernel)  # [n, dims, positions]
        total += patches.sum((0, 2)).double()
        flat = patches.transpose(0, 1).reshape(dims, -1)
        outer += (flat @ flat.T).double()  # float32 products of ~0-mean normalised pixels, summed in float64
        count += flat.shape[1]
    mean = total / count
    return mean, outer / count - torch.outer(mean, mean)


@torch.no_grad()
def whiten_first_conv(model: nn.Module, images: torch.Tensor) -> None:
    """Set the first convolution to whitening filters of `images` (normalised training images) and
    freeze it: filter i is the i-th principal component / sqrt(its variance + EPS), filter n/2 + i its
    negative, and the bias centres each output on the patches' mean."""
    conv = first_conv(model)
    check_fits(conv)
    mean, cov = patch_covariance(images[:MAX_IMAGES], conv.kernel_size)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    half = conv.out_channels // 2
    top = vectors[:, -half:].flip(1).T / (values[-half:].flip(0).clamp_min(0) + EPS).sqrt()[:, None]
    weight = torch.cat([top, -top]).to(conv.weight.dtype)
    conv.weight.copy_(weight.reshape_as(conv.weight))
    if conv.bias is not None:
        conv.bias.copy_(-(weight.double() @ mean).to(conv.bias.dtype))
    conv.requires_grad_(False)
