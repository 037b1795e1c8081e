"""`cnnlab-predict CHECKPOINT IMAGE...`: the top classes a trained cnnlab model gives image files.

    cnnlab-predict outputs/2026-11-23/15-02-11/checkpoints/best.pt seven.png cat.jpg --top 3

The model is rebuilt from the config stored in the checkpoint and loaded with weights_only=True, so
nothing in the file is executed. Each image is prepared as the training images were: decoded,
converted and resized by the function the folder source uses (cnnlab.data.decode: the checkpoint's
channel count, scaled keeping its aspect and center-cropped to its height and width), and normalized
with the training set's mean and std.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from cnnlab.errors import CnnlabError

DEFAULT_TOP = 5
CHECKPOINT_KEYS = ("config", "classes", "shape", "mean", "std")


def load_model(path: Path) -> Tuple[torch.nn.Module, dict]:
    """The trained model in eval mode on the CPU, and the checkpoint it came from."""
    from omegaconf.errors import OmegaConfBaseException

    from cnnlab.errors import ConfigError
    from cnnlab.models import build_model
    from cnnlab.models.schema import saved_model_config
    from cnnlab.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint]
    if missing or "model" not in checkpoint.get("config", {}):
        lacks = ", ".join(missing or ["config.model"])
        raise CnnlabError(f"{path} is not a cnnlab training checkpoint: it lacks {lacks}. Use checkpoints/best.pt "
                          "or last.pt from a run folder.")
    # the checkpoint's own weights replace whatever it started from
    saved = {**checkpoint["config"]["model"], "pretrained": None}
    try:
        model_cfg = saved_model_config(saved)  # this version's family config, or an older flat one's
    except (OmegaConfBaseException, ConfigError) as exc:
        raise CnnlabError(f"the model config in {path} does not fit this cnnlab version: "
                          f"{str(exc).splitlines()[0]}.") from None
    model = build_model(model_cfg, tuple(checkpoint["shape"]), len(checkpoint["classes"]))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:
        raise CnnlabError(f"the weights in {path} do not fit the {model_cfg.name} model its config describes "
                          f"({str(exc).splitlines()[0][:200]}); was it written by another cnnlab version?") from None
    return model.eval(), checkpoint


def load_image(path: Path, shape: Sequence[int]) -> torch.Tensor:
    """uint8 [C, H, W] exactly as the folder source makes training images of this file: the same
    decoding, conversion and resizing (cnnlab.data.decode), at the checkpoint's channels and size."""
    from PIL import Image, UnidentifiedImageError

    from cnnlab.data.decode import decode_image, to_channels_first

    channels, height, width = shape
    if not path.exists():
        raise CnnlabError(f"image {path} does not exist.")
    if not path.is_file():
        raise CnnlabError(f"{path} is not a file; give image files (PNG, JPEG, ...).")
    try:
        array = decode_image(path, (height, width), channels=1 if channels == 1 else None)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CnnlabError(f"could not read {path} as an image ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160] if str(exc) else 'no details'}).") from None
    return torch.from_numpy(to_channels_first(array, channels).copy())


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 [N, C, H, W] -> the floats the training loader made of them (its own arithmetic, bit for bit)."""
    from cnnlab.data.loader import DeviceLoader

    labels = torch.zeros(len(images), dtype=torch.long)
    return DeviceLoader(images, labels, max(len(images), 1), mean, std).transform(images)


@torch.no_grad()
def predict(model: torch.nn.Module, checkpoint: dict, images: torch.Tensor) -> torch.Tensor:
    """[N, classes] probabilities for uint8 images [N, C, H, W], as the run's evaluation made them
    (each image averaged with its mirror image where it trained with trainer.test_time_flip)."""
    from cnnlab.diagnostics import class_probabilities
    from cnnlab.train.evaluate import eval_logits

    x = normalize(images, checkpoint["mean"], checkpoint["std"])
    flip = bool(checkpoint["config"].get("trainer", {}).get("test_time_flip", False))
    return class_probabilities(eval_logits(model, x, flip))


def format_top(name: str, probs: torch.Tensor, classes: Sequence[str], k: int) -> List[str]:
    values, indices = probs.topk(k)
    lines = [name]
    for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist()), 1):
        lines.append(f"  {rank}. {classes[i]}  {p:.2%}")
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    from cnnlab import quick_exit

    quick_exit.install()  # torch loaded: leave without the collector's walks at exit
    parser = argparse.ArgumentParser(
        prog="cnnlab-predict",
        description="Print the most likely classes, with probabilities, that a trained cnnlab model gives "
                    "image files.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", type=Path,
                        help="a run's checkpoints/best.pt or last.pt")
    parser.add_argument("images", metavar="IMAGE", type=Path, nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top", type=int, default=None, metavar="K",
                        help=f"classes shown per image (default {DEFAULT_TOP}, or every class when there are fewer)")
    args = parser.parse_args(argv)
    try:
        if args.top is not None and args.top < 1:
            raise CnnlabError(f"--top {args.top}: give a number of classes of at least 1.")
        # the images first: a typo in a file name is found without waiting for torch to load a model
        missing = [str(p) for p in args.images if not p.exists()]
        if missing:
            raise CnnlabError(f"no such image file{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.")
        model, checkpoint = load_model(args.checkpoint)
        images = torch.stack([load_image(p, checkpoint["shape"]) for p in args.images])
        probs = predict(model, checkpoint, images)
        classes = [str(c) for c in checkpoint["classes"]]
        k = min(args.top or DEFAULT_TOP, len(classes))
        for path, row in zip(args.images, probs):
            print("\n".join(format_top(str(path), row, classes, k)))
    except CnnlabError as exc:
        print(f"cnnlab-predict: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("cnnlab-predict: interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
