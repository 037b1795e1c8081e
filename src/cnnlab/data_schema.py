"""Which of the dataset keys each source reads, so that one that does nothing with the chosen source
is refused (`dataset=mnist dataset.num_samples=100`) instead of silently ignored.

The dataset config stays one dataclass (cnnlab.config.DatasetConfig): most of its keys (batch sizes,
splits, classes, augmentation) act for every source. SOURCE_KEYS lists, per source, the others it
reads; a source not listed here is not checked. torch-free, for cnnlab.config.validate.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from cnnlab.errors import ConfigError

SOURCE_KEYS: Dict[str, Tuple[str, ...]] = {
    "digits": (),
    "synthetic": ("shape", "num_classes", "num_samples"),
    "mnist": ("download",),
    "fashion_mnist": ("download",),
    "cifar10": ("download",),
    "cifar100": ("download",),
    "svhn": ("download",),
    "folder": ("path",),
    "cats_vs_dogs": ("download",),
    "hymenoptera": ("download",),
}
# dataset.image_size acts for every source: folders and the course zips decode at that size, the
# in-memory sets are resized once on the device (cnnlab.data.resize).


def source_only_keys() -> list[str]:
    """Keys some source reads and another does not."""
    return sorted({key for keys in SOURCE_KEYS.values() for key in keys})


def check_source_keys(dataset: Any, defaults: Any) -> None:
    """Refuse a source-only key set (to other than its default) for a source that does not read it."""
    own = SOURCE_KEYS.get(dataset.name)
    if own is None:
        return
    for key in source_only_keys():
        if key in own or getattr(dataset, key) == getattr(defaults, key):
            continue
        readers = [name for name, keys in SOURCE_KEYS.items() if key in keys]
        value = getattr(dataset, key)
        shown = str(value).lower() if isinstance(value, bool) else value
        raise ConfigError(f"dataset.{key}={shown} does nothing with dataset={dataset.name}, so it is refused: "
                          f"dataset.{key} is read by {', '.join(readers)} only. The keys only some sources read are "
                          f"{', '.join(source_only_keys())}; {dataset.name} reads "
                          f"{', '.join(own) if own else 'none of them'}. Drop the setting, or pick a dataset= "
                          "that reads it; nothing was run.")
