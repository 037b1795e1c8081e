"""A Keras-style `model.summary()`: one row per layer with its output shape and parameter count.

Rows are leaf layers, except that blocks marked `summary_unit` (ResNet blocks, Inception modules)
are one row each so deep networks stay readable. Frozen parameters count as non-trainable, as in
Keras; batch-norm running statistics are buffers, not parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _rows(model: nn.Module) -> list[tuple[str, nn.Module]]:
    rows, inside_unit = [], ()
    for name, module in model.named_modules():
        if not name or (inside_unit and name.startswith(inside_unit)):
            continue
        if getattr(module, "summary_unit", False):
            rows.append((name, module))
            inside_unit = name + "."
        elif not list(module.children()):
            rows.append((name, module))
    return rows


@torch.no_grad()
def summarize(model: nn.Module, shape: tuple, device: torch.device | str = "cpu", title: str | None = None) -> str:
    rows = _rows(model)
    shapes: dict[nn.Module, str] = {}

    def record(module, _inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(out, torch.Tensor):
            shapes[module] = "(None, " + ", ".join(str(d) for d in out.shape[1:]) + ")"

    probe(model, [m for _, m in rows], record, shape, device)

    total, trainable = count_params(model)
    lines = [f'Model: "{title or type(model).__name__}"']
    header = f"{'Layer (type)':<44}{'Output Shape':<26}{'Param #':>14}"
    rule = "-" * len(header)
    lines += [rule, header, "=" * len(header)]
    for name, module in rows:
        params = sum(p.numel() for p in module.parameters())
        frozen = params and not any(p.requires_grad for p in module.parameters())
        label = f"{name} ({type(module).__name__})" + (" [frozen]" if frozen else "")
        lines.append(f"{label:<44}{shapes.get(module, '-'):<26}{params:>14,}")
    lines += ["=" * len(header), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", rule]
    return "\n".join(lines)


@torch.no_grad()
def probe(model: nn.Module, modules, hook, shape: tuple, device="cpu") -> None:
    """One zero image of `shape` through `model` in eval mode with `hook` on `modules`; the model's
    mode is restored and no batch-norm statistics or gradients change."""
    hooks = [m.register_forward_hook(hook) for m in modules]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        model(torch.zeros(1, *shape, device=device, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
