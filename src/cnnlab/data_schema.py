"""Each dataset source's typed config: the keys that act in it, and nothing else.

As for the model families and the optimizers (cnnlab/models/schema.py, cnnlab/optim_schema.py):
conf/dataset/*.yaml name their source's schema first in their defaults list, `validate` builds the
same dataclass through the registry, and `dataset=mnist dataset.num_samples=100` is refused with
MNIST's keys instead of being silently ignored. Most keys (batch sizes, splits, classes, image size,
normalization, augmentation) act for every source. torch-free: the loaders in cnnlab/data/sources/
import torch only when a dataset is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar, List, Optional

from cnnlab.errors import ConfigError
from cnnlab.registry import config_class, register, require


@dataclass
class AugmentConfig:
    crop: int = 0  # random crop after zero-padding by this many pixels (0 = off)
    flip: bool = False  # random horizontal flip


@dataclass
class DatasetCommon:
    """The keys every source has."""
    name: str = "digits"
    batch_size: int = 64  # training batch
    eval_batch_size: Optional[int] = None  # validation/test batch (default: 4x batch_size)
    val_split: float = 0.1  # part of train held out when the set has no validation split
    val_from_test: bool = False  # val_split=0 and no validation split: validate on test (refused unless true)
    train_size: Optional[int] = None  # use only the first N training images
    classes: Optional[List[int]] = None  # keep only these class indices, relabelled 0..k-1 (null = all)
    # side of the square images: folders and the course zips decode at that size, the in-memory sets
    # are resized once on the device (cnnlab.data.resize); null = as stored (folder: 64)
    image_size: Optional[int] = None
    mean: Optional[List[float]] = None  # per channel, 0..1 scale (default: from the train split)
    std: Optional[List[float]] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __new__(cls, *args, **kwargs):
        return object.__new__(config_class("dataset", DatasetCommon, cls, args, kwargs))  # name= picks the class

    # True where a mirror image is another symbol or none (digits), so flips would teach wrong labels
    mirror_changes_class: ClassVar[bool] = False

    def check(self) -> None:
        pass  # the shared keys: cnnlab.config checks them with the other groups' values

    def mirror_caveat(self, test_time_flip: bool) -> Optional[str]:
        """The warning a run starts with where it mirrors the images of a set whose mirror images are
        not its classes. Not refused: seeing what flips do to digits is a fair experiment."""
        keys = (["dataset.augment.flip=true"] if self.augment.flip else []) + \
               (["trainer.test_time_flip=true"] if test_time_flip else [])
        if not (self.mirror_changes_class and keys):
            return None
        return (f"{' and '.join(keys)} on {self.name}: a mirrored digit is another symbol or none (a mirrored 2 "
                f"is no 2), so mirror images are likely to lower the accuracy. Set them to false unless that is "
                f"the experiment (for digits use experiment=fast; experiment=fast94's flips are for clothes).")


@dataclass
class DigitsConfig(DatasetCommon):
    name: str = "digits"  # scikit-learn's 8x8 digits, shipped inside cnnlab
    mirror_changes_class: ClassVar[bool] = True


@dataclass
class DownloadedConfig(DatasetCommon):
    """A set that is fetched once into data_dir (torchvision's sets, the course's zips)."""
    download: bool = True  # download missing files; false: only look for them


@dataclass
class MNISTConfig(DownloadedConfig):
    name: str = "mnist"
    mirror_changes_class: ClassVar[bool] = True


@dataclass
class FashionMNISTConfig(DownloadedConfig):
    name: str = "fashion_mnist"


@dataclass
class CIFAR10Config(DownloadedConfig):
    name: str = "cifar10"


@dataclass
class CIFAR100Config(DownloadedConfig):
    name: str = "cifar100"


@dataclass
class SVHNConfig(DownloadedConfig):
    name: str = "svhn"
    mirror_changes_class: ClassVar[bool] = True


@dataclass
class CatsVsDogsConfig(DownloadedConfig):
    name: str = "cats_vs_dogs"


@dataclass
class HymenopteraConfig(DownloadedConfig):
    name: str = "hymenoptera"


@dataclass
class FolderConfig(DatasetCommon):
    name: str = "folder"
    path: Optional[str] = None  # one subfolder per class, or train/ and val/

    def check(self) -> None:
        super().check()
        if not self.path:
            raise ConfigError("dataset=folder needs the folder of images: add dataset.path=DIR (one subfolder "
                              "per class, or train/ and val/ subfolders).")


def as_folder(cfg: DatasetCommon, path: str) -> FolderConfig:
    """The folder source's config for a set that unpacks into one (the course's zips): the shared keys
    and the name kept, so messages still say which dataset."""
    shared = {f.name: getattr(cfg, f.name) for f in fields(DatasetCommon)}
    return FolderConfig(**shared, path=path)


@dataclass
class SyntheticConfig(DatasetCommon):
    name: str = "synthetic"
    shape: List[int] = field(default_factory=lambda: [3, 32, 32])  # C, H, W
    num_classes: int = 10
    num_samples: int = 1024  # training images (val/test get a quarter each)

    def check(self) -> None:
        super().check()
        require(len(self.shape) == 3 and all(v >= 1 for v in self.shape), "dataset.shape",
                "[channels, height, width] of positive integers", list(self.shape))
        require(self.num_classes >= 2, "dataset.num_classes", "at least 2", self.num_classes)
        require(self.num_samples >= 1, "dataset.num_samples", "a positive integer", self.num_samples)


_SOURCES = "cnnlab.data.sources"
register("dataset", "digits", DigitsConfig, f"{_SOURCES}.digits:load_digits")
register("dataset", "mnist", MNISTConfig, f"{_SOURCES}.mnist:load_mnist")
register("dataset", "fashion_mnist", FashionMNISTConfig, f"{_SOURCES}.mnist:load_fashion_mnist")
register("dataset", "cifar10", CIFAR10Config, f"{_SOURCES}.cifar:load_cifar10")
register("dataset", "cifar100", CIFAR100Config, f"{_SOURCES}.cifar:load_cifar100")
register("dataset", "svhn", SVHNConfig, f"{_SOURCES}.svhn:load_svhn")
register("dataset", "folder", FolderConfig, f"{_SOURCES}.folder:load_folder")
register("dataset", "synthetic", SyntheticConfig, f"{_SOURCES}.synthetic:load_synthetic")
register("dataset", "cats_vs_dogs", CatsVsDogsConfig, f"{_SOURCES}.archives:load_cats_vs_dogs")
register("dataset", "hymenoptera", HymenopteraConfig, f"{_SOURCES}.archives:load_hymenoptera")
