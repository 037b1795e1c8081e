"""Transfer learning: start from pretrained weights, then freeze and unfreeze parts of the network.

`model.pretrained=PATH` copies a cnnlab checkpoint's tensors into the new model by name and shape.
The head (`model.head_prefixes`) stays freshly initialised when the checkpoint was trained on other
classes (or another number of them); any other missing or mismatched tensor means another architecture and is an error.
`model.pretrained=imagenet` loads torchvision's ImageNet weights (resnet18/34/50, vgg11/16,
alexnet): the head is dropped, a 1-channel input gets the first conv summed over RGB, and tensors
that do not fit (the CIFAR stem of small inputs, VGG's small-input classifier) are skipped and named.

`finetune.freeze` (backbone | a module prefix) sets requires_grad=False, so the optimizer skips those
parameters; `finetune.unfreeze` trains prefixes again (VGG and AlexNet also take `block1`..`blockN`,
the convs between two max pools: seed 000's block5). Batch norm layers inside a frozen part stay in
eval mode during training (running statistics frozen too), as Keras does for a frozen BatchNormalization.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from cnnlab.config import FinetuneConfig, ModelConfig
from cnnlab.errors import ConfigError, DataError

log = logging.getLogger("cnnlab")

# (family, depth, batch_norm) -> torchvision weights enum name (torchvision's ResNets have batch norm)
IMAGENET = {("resnet", 18, True): "ResNet18_Weights", ("resnet", 34, True): "ResNet34_Weights",
            ("resnet", 50, True): "ResNet50_Weights", ("vgg", 11, False): "VGG11_Weights",
            ("vgg", 16, False): "VGG16_Weights", ("vgg", 11, True): "VGG11_BN_Weights",
            ("vgg", 16, True): "VGG16_BN_Weights", ("alexnet", 0, False): "AlexNet_Weights"}


def apply_finetune(model: nn.Module, model_cfg: ModelConfig, finetune: FinetuneConfig, shape: tuple,
                   classes: Optional[List[str]] = None) -> None:
    """Load `model.pretrained`, then apply `finetune.freeze` / `.unfreeze`. Call before the optimizer is built."""
    if model_cfg.pretrained:
        if model_cfg.pretrained == "imagenet":
            load_imagenet(model, model_cfg, shape[0])
        else:
            load_pretrained(model, Path(model_cfg.pretrained).expanduser(), classes)
    freeze(model, finetune.freeze, finetune.unfreeze)


# ---------------------------------------------------------------- pretrained weights
def is_head(name: str, head_prefixes: List[str]) -> bool:
    return any(_under(name, p) for p in head_prefixes)


def load_pretrained(model: nn.Module, path: Path, classes: Optional[List[str]] = None) -> None:
    """Copy a cnnlab checkpoint's weights; the head only where it was trained on the same `classes`
    (when given; else wherever its shape fits)."""
    from cnnlab.train.checkpoint import load_checkpoint

    saved = load_checkpoint(path)
    heads = getattr(model, "head_prefixes", [])
    target = model.state_dict()
    same_classes = classes is None or list(saved.get("classes", [])) == list(classes)
    copied, fresh, mismatched = {}, [], []
    for name, tensor in target.items():
        source = saved["model"].get(name)
        if is_head(name, heads) and not same_classes:
            fresh.append(name)
        elif source is not None and source.shape == tensor.shape:
            copied[name] = source
        elif is_head(name, heads):
            fresh.append(name)
        else:
            mismatched.append(f"{name} {_shape(tensor)} vs {_shape(source) if source is not None else 'missing'}")
    extra = [f"{k} (not in this model)" for k in saved["model"] if k not in target and not is_head(k, heads)]
    if mismatched or extra:
        written_for = saved.get("config", {}).get("model", {}).get("name", "another model")
        keys = mismatched + extra
        raise ConfigError(f"model.pretrained={path} was written for {written_for}, not this architecture: "
                          f"{len(keys)} tensors do not fit (this model's shape vs the checkpoint's): "
                          f"{'; '.join(keys[:12])}{' ...' if len(keys) > 12 else ''}. Fine-tune the same "
                          "model preset (and model.width/depth) that wrote the checkpoint.")
    model.load_state_dict(copied, strict=False)
    note = f"; head {', '.join(heads)} left freshly initialised for the new classes" if fresh else ""
    log.info(f"Loaded {len(copied)} of {len(target)} tensors from {path}{note}.")


def load_imagenet(model: nn.Module, cfg: ModelConfig, in_channels: int) -> None:
    """torchvision's ImageNet weights into the matching tensors; the head and misfits skipped."""
    # a family's config holds only its own keys: AlexNet has no depth or batch norm, only ResNet residual
    key = (cfg.family, getattr(cfg, "depth", 0), bool(getattr(cfg, "batch_norm", False)))
    if key not in IMAGENET or not getattr(cfg, "residual", True):
        raise ConfigError(f"model.pretrained=imagenet has weights for resnet18/34/50 (with their batch norm "
                          f"and skips), vgg11/16 (with or without batch_norm) and alexnet, not {cfg.name} as "
                          "configured. Use model.pretrained=PATH to a cnnlab checkpoint instead.")
    state = imagenet_state_dict(IMAGENET[key])
    heads = getattr(model, "head_prefixes", [])
    target = model.state_dict()
    first_conv = next((k for k, v in target.items() if v.dim() == 4), None)
    copied, skipped = {}, []
    for name, tensor in state.items():
        if is_head(name, heads) or name not in target:
            skipped.append(name)
            continue
        if name == first_conv and in_channels == 1 and tensor.dim() == 4 and tensor.shape[1] == 3:
            tensor = tensor.sum(dim=1, keepdim=True)  # a gray image is R = G = B: same response
        if tensor.shape == target[name].shape:
            copied[name] = tensor
        else:
            skipped.append(f"{name} {_shape(tensor)} vs {_shape(target[name])}")
    if not copied:
        raise ConfigError(f"none of torchvision's {IMAGENET[key]} tensors fit {cfg.name} (model.width must be "
                          "64 for ImageNet weights).")
    model.load_state_dict(copied, strict=False)
    log.info(f"Loaded {len(copied)} ImageNet tensors ({IMAGENET[key]}.DEFAULT); skipped {len(skipped)}: "
             f"{', '.join(skipped[:10])}{' ...' if len(skipped) > 10 else ''}.")


def imagenet_state_dict(enum_name: str) -> Dict[str, torch.Tensor]:
    """Download (or read from torch's hub cache) torchvision's weights; offline, a clear DataError."""
    import torchvision.models as tvm

    weights = getattr(tvm, enum_name).DEFAULT
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTPError, OSError, a corrupt partial file
        raise DataError(f"could not get torchvision's ImageNet weights {enum_name}.DEFAULT ({weights.url}): "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}. They are cached "
                        f"as {cache}: copy that file there on a machine without internet, or fine-tune from a "
                        "cnnlab checkpoint with model.pretrained=RUN_DIR/checkpoints/best.pt.") from None


# ---------------------------------------------------------------- freezing
def freeze(model: nn.Module, what: Optional[str], unfreeze: List[str]) -> None:
    """requires_grad=False for `what` (backbone | prefix), then True again for `unfreeze` prefixes."""
    if what is None:
        if unfreeze:
            raise ConfigError(f"finetune.unfreeze={list(unfreeze)} needs finetune.freeze (backbone or a module "
                              "prefix): without it everything is trained already.")
        return
    heads = getattr(model, "head_prefixes", [])
    if what in ("backbone", "all-but-head"):
        frozen = [p for n, p in model.named_parameters() if not is_head(n, heads)]
    else:
        frozen = [p for n, p in _matching(model, [what], "finetune.freeze")]
    for p in frozen:
        p.requires_grad_(False)
    for _, p in _matching(model, list(unfreeze), "finetune.unfreeze"):
        p.requires_grad_(True)
    keep_frozen_bn_in_eval(model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(f"Fine-tuning: freeze={what}, unfreeze={list(unfreeze)}: {trainable:,} of {total:,} params trainable.")


def block_aliases(model: nn.Module) -> Dict[str, List[str]]:
    """VGG/AlexNet: `blockK` = the `features.N` layers between the (K-1)th and Kth max pool."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return {}
    aliases, block, k = {}, [], 1
    for index, layer in enumerate(features):
        # a pool (or the identity standing in for one on small inputs) ends a block
        if isinstance(layer, (nn.MaxPool2d, nn.Identity)):
            if block:
                aliases[f"block{k}"] = block
                k += 1
            block = []
        elif any(True for _ in layer.parameters()):
            block.append(f"features.{index}")
    if block:
        aliases[f"block{k}"] = block
    return aliases


def _matching(model: nn.Module, prefixes: List[str], key: str):
    aliases = block_aliases(model)
    named = list(model.named_parameters())
    found = []
    for prefix in prefixes:
        expanded = aliases.get(prefix, [prefix])
        hits = [(n, p) for n, p in named if any(_under(n, e) for e in expanded)]
        if not hits:
            tops = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
            hint = f"; aliases: {', '.join(aliases)}" if aliases else ""
            raise ConfigError(f"{key}: '{prefix}' names no parameters of this model. Its top-level modules "
                              f"are {', '.join(tops)}{hint} (a prefix may go deeper, e.g. {tops[0]}.0).")
        found += hits
    return found


def keep_frozen_bn_in_eval(model: nn.Module) -> None:
    """Batch norm whose parameters are all frozen normalizes with its running statistics in training too."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                module.register_forward_pre_hook(_eval_mode)


def _eval_mode(module: nn.Module, _inputs) -> None:
    module.training = False  # model.train() each epoch sets it back; this runs before every forward


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"
