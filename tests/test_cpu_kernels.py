"""Workarounds for CPU kernels that crash: each case runs in its own process, since a crash kills it."""
from __future__ import annotations

import subprocess
import sys

import pytest

# torch 2.14's oneDNN weight gradient of a strided 1x1 conv in channels_last corrupts the heap for odd
# batches with 2 threads on AVX-512 CPUs. Each script crashed (SIGSEGV/SIGABRT) before the workaround.
STRIDED_1X1 = """
import torch, torch.nn.functional as F
from cnnlab.models.layers import StridedPointwiseConv
torch.set_num_threads(2)
torch.manual_seed(0)
for n, cin, hw in [(37, 8, 28), (5, 8, 28), (3, 2, 28), (37, 8, 56)]:
    conv = StridedPointwiseConv(cin, 2 * cin, 2).to(memory_format=torch.channels_last)
    x = torch.randn(n, cin, hw, hw).contiguous(memory_format=torch.channels_last).requires_grad_()
    for _ in range(3):
        y = conv(x)
        y.sum().backward()
    reference = F.conv2d(x.detach().contiguous(), conv.weight.detach(), stride=2)
    assert torch.allclose(y.detach(), reference, atol=1e-5), (n, cin, hw)
print("ok")
"""

RESNET_STEP = """
import torch
from cnnlab.config import ModelConfig
from cnnlab.models import build_model
torch.set_num_threads(2)
model = build_model(ModelConfig(name="resnet18", family="resnet", depth=18, width=8), (1, 28, 28), 5)
model = model.to(memory_format=torch.channels_last)
x = torch.randn(37, 1, 28, 28).contiguous(memory_format=torch.channels_last)
for _ in range(3):
    model(x).logsumexp(1).mean().backward()
print("ok")
"""


@pytest.mark.parametrize("script", [STRIDED_1X1, RESNET_STEP], ids=["strided_1x1", "resnet18_step"])
def test_channels_last_strided_pointwise_conv_trains_on_cpu(script):
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
