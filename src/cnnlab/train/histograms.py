"""`trainer.histograms=true`: where signals vanish, per layer, once per epoch (seed 001's figure).

Before training and after each epoch, one fixed batch (the first 1,000 validation images, model in
eval mode) goes forward with hooks on every activation module (ReLU, Sigmoid, Tanh, ...), then the
training loss goes backward for the gradient norm of every weight tensor. Off the hot path: one extra
forward and backward per epoch, no hooks during training steps, and `.grad` is left untouched.

Written to TensorBoard (`activations/LAYER`, `weights/PARAM` histograms, `grad_norm/PARAM` scalars)
and to `activations.json` in the run folder, rewritten after each epoch:

    {"format": 1, "inputs": 1000, "source": "val",
     "layers": ["1", "3", ...],                     # activation modules in forward order
     "epochs": [{"epoch": 0,                        # 0 = before training
                 "activations": {"1": {"edges": [31 floats], "counts": [30 ints],
                                       "mean": .., "std": .., "zero_fraction": ..}, ...},
                 "grad_norms": {"0.weight": .., "2.weight": .., ...}}, ...]}

Edges span (0, 1) for sigmoid layers (the seed's plot range), (-1, 1) for tanh, and
(min(0, lowest), max(1, highest)) otherwise.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from cnnlab import atomic
from cnnlab.train.objective import main_logits

BINS = 30
INPUTS = 1000
ACTIVATION_TYPES = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU)


class Histograms:
    def __init__(self, ctx, first_epoch_done: int) -> None:
        self.ctx = ctx
        self.path = Path(ctx.run_dir) / "activations.json"
        loader = ctx.data.val
        self.x = loader.transform(loader.x[:INPUTS])  # the validation loader neither crops nor flips
        self.y = loader.y[:INPUTS]
        self.layers = [(n, m) for n, m in ctx.raw_model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
        self.record = {"format": 1, "inputs": len(self.x), "source": "val",
                       "layers": [n for n, _ in self.layers], "epochs": []}
        if first_epoch_done and self.path.exists():  # a resumed run keeps its earlier epochs
            self.record["epochs"] = [e for e in json.loads(self.path.read_text())["epochs"]
                                     if e["epoch"] <= first_epoch_done]
        if first_epoch_done == 0:
            self(0)

    def __call__(self, epoch: int) -> None:
        model, writer = self.ctx.raw_model, self.ctx.writer
        was_training = model.training
        model.eval()
        captured = {}
        handles = [m.register_forward_hook(_keep(captured, n)) for n, m in self.layers]
        try:
            with torch.enable_grad():
                loss = self.ctx.objective(model(self.x), self.y)
        finally:
            for h in handles:
                h.remove()
        weights = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
        grads = torch.autograd.grad(loss, [p for _, p in weights], allow_unused=True)
        model.train(was_training)

        entry = {"epoch": epoch, "activations": {}, "grad_norms": {}}
        for name, module in self.layers:
            if name not in captured:
                continue
            values = captured[name]
            writer.add_histogram(f"activations/{name}", values, epoch)
            entry["activations"][name] = _histogram(values, module)
        for (name, p), g in zip(weights, grads):
            writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), epoch)
            if g is not None:
                norm = g.float().norm().item()
                writer.add_scalar(f"grad_norm/{name}", norm, epoch)
                entry["grad_norms"][name] = norm
        self.record["epochs"].append(entry)
        atomic.write_text(self.path, json.dumps(self.record))


def _keep(captured: dict, name: str):
    def hook(_module, _inputs, output):
        out = main_logits(output) if isinstance(output, (tuple, list)) else output
        captured[name] = out.detach().float().flatten().cpu()
    return hook


def _histogram(values: torch.Tensor, module: nn.Module) -> dict:
    if isinstance(module, nn.Sigmoid):
        lo, hi = 0.0, 1.0
    elif isinstance(module, nn.Tanh):
        lo, hi = -1.0, 1.0
    else:
        lo, hi = min(0.0, values.min().item()), max(1.0, values.max().item())
    counts = torch.histc(values, bins=BINS, min=lo, max=hi)
    edges = torch.linspace(lo, hi, BINS + 1)
    return {"edges": [round(e, 6) for e in edges.tolist()], "counts": [int(c) for c in counts.tolist()],
            "mean": values.mean().item(), "std": values.std().item() if len(values) > 1 else 0.0,
            "zero_fraction": (values == 0).float().mean().item()}
