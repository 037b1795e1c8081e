"""Sanity modes with Lightning's names: is the setup sound before a long run?

- `trainer.fast_dev_run=true`: one batch of train, one of validation and one of test, end to end
  (forward, backward, step, evaluation), then stop. Nothing is written: no checkpoints, results.json,
  TensorBoard events or pictures; the console lines are the whole output.
- `trainer.overfit_batches=N`: train on the same N batches every epoch. A model and loss that can
  learn drive the training accuracy on them to ~100% within a few dozen epochs; one that cannot
  points at a bug (labels, normalization, a frozen network, a learning rate far off).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from cnnlab.config import RootConfig

if TYPE_CHECKING:  # the command line reads hydra_overrides before torch is imported
    from cnnlab.data import DataBundle
    from cnnlab.data.loader import DeviceLoader

log = logging.getLogger("cnnlab")


def hydra_overrides(argv) -> list:
    """fast_dev_run on the command line: no .hydra/ copy of the config either (train.log keeps the lines)."""
    for arg in argv:
        key, _, value = str(arg).partition("=")
        if key.lstrip("+") == "trainer.fast_dev_run" and value.strip().lower() in ("true", "1", "yes", "on"):
            return ["hydra.output_subdir=null"]
    return []


def configure(cfg: RootConfig) -> RootConfig:
    """fast_dev_run trains one epoch (of one batch)."""
    if not cfg.trainer.fast_dev_run:
        return cfg
    return dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, max_epochs=1))


def writes(cfg: RootConfig) -> bool:
    return not cfg.trainer.fast_dev_run


def limit(data: DataBundle, cfg: RootConfig) -> DataBundle:
    """The loaders a sanity mode trains and evaluates on; the same bundle when neither is on."""
    t = cfg.trainer
    if t.fast_dev_run:
        log.info("fast_dev_run: one batch of train, validation and test, end to end; nothing is written.")
        return dataclasses.replace(data, train=_first(data.train, 1, data), val=_first(data.val, 1, data),
                                   test=_first(data.test, 1, data))
    if t.overfit_batches:
        train = _first(data.train, t.overfit_batches, data)
        log.info(f"overfit_batches={t.overfit_batches}: training on the same {len(train)} batches "
                 f"({len(train.x):,} images) every epoch; a correct setup reaches ~100% train accuracy on them.")
        return dataclasses.replace(data, train=train)
    return data


def _first(loader: DeviceLoader, batches: int, data: DataBundle) -> DeviceLoader:
    """The first `batches` batches of epoch 1 (a shuffled loader's first permutation), fixed for good."""
    from cnnlab.data.loader import DeviceLoader

    n = min(len(loader.x), batches * loader.batch_size)
    if loader.shuffle:
        keep = loader.epoch_order(1)[:n]
        x, y = loader.x.index_select(0, keep), loader.y.index_select(0, keep)
    else:
        x, y = loader.x[:n], loader.y[:n]
    return DeviceLoader(x, y, loader.batch_size, data.mean, data.std, shuffle=False, crop=loader.crop,
                        flip=loader.flip, generator=loader.generator, channels_last=loader.channels_last)


def closing_line(line: str, cfg: RootConfig, results: dict) -> str:
    """The run's last line, saying which sanity mode it ran in."""
    if cfg.trainer.fast_dev_run:
        return line.split(". Results in")[0] + ". fast_dev_run: the setup runs end to end; nothing was written."
    batches = results.get("overfit_batches")
    if batches and results.get("final_train_acc") is not None:
        return (line.replace("Test accuracy", f"Overfit {batches} batches: train accuracy "
                                              f"{results['final_train_acc']:.2%}. Test accuracy", 1))
    return line
