"""Every dataset source, on tiny files written here in the exact standard on-disk formats.

The download path runs against a stand-in torchvision (imported in no test), so it is fast and
offline; the last tests read the real Fashion-MNIST of Debian's package and check the embedded digits.
"""
import gzip
import io
import logging
import os
import pickle
import sys
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import DatasetConfig
from cnnlab import registry
from cnnlab.data.sources import load_source
from cnnlab.data.sources import folder as folder_source
from cnnlab.data.sources import mnist as mnist_source
from cnnlab.errors import DataError
from conftest import FASHION_DEBIAN

RNG = np.random.default_rng(0)
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def config(name: str, **kw) -> DatasetConfig:
    offline = {"download": False} if "download" in registry.get("dataset", name).keys() else {}
    return DatasetConfig(name=name, **{**offline, **kw})


@pytest.mark.parametrize("name", registry.names("dataset"))
def test_every_registered_source_resolves(name):
    assert callable(registry.get("dataset", name).load())


# ---------------------------------------------------------------- MNIST family (IDX)
def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_idx_set(folder: Path, gz: bool, n_train=12, n_test=5, hw=(7, 5)) -> dict:
    arrays = {"train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, *hw)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, *hw)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10}
    for name, array in arrays.items():
        write_idx(folder / name, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder, gz):
    arrays = make_idx_set(tmp_path / folder / "raw", gz)
    s = load_source(config(name), tmp_path)
    assert s.train_x.shape == (12, 1, 7, 5) and s.train_x.dtype == torch.uint8 and s.test_x.shape == (5, 1, 7, 5)
    assert np.array_equal(s.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(s.test_x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert s.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist() and s.train_y.dtype == torch.long
    assert s.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    expected = [str(d) for d in range(10)] if name == "mnist" else mnist_source.FASHION_CLASSES
    assert s.classes == expected and s.val_x is None


def test_fashion_mnist_is_found_in_debians_folder_and_in_data_dir(tmp_path, monkeypatch):
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    make_idx_set(debian, gz=True, n_train=3)
    monkeypatch.setattr(mnist_source, "DEBIAN_FASHION", debian)
    assert len(load_source(config("fashion_mnist"), tmp_path / "data").train_x) == 3
    make_idx_set(tmp_path / "data" / "fashion_mnist", gz=False, n_train=4)  # a local copy comes first
    assert len(load_source(config("fashion_mnist"), tmp_path / "data").train_x) == 4
    assert mnist_source.FASHION_CLASSES[0] == "T-shirt/top" and mnist_source.FASHION_CLASSES[9] == "Ankle boot"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize("gz, damage, message", [
    (False, _truncate, "truncated or corrupt: its header promises 420 bytes"),
    (True, _truncate, "cannot be read"),
    (True, lambda p: p.write_bytes(b"not gzip at all"), "cannot be read"),
    (False, lambda p: p.write_bytes(b"\x00\x00\x08\x01" + p.read_bytes()[4:]), "magic number 00000801"),
])
def test_damaged_idx_file_is_a_clear_error_naming_it(tmp_path, gz, damage, message):
    make_idx_set(tmp_path / "MNIST" / "raw", gz)
    path = tmp_path / "MNIST" / "raw" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    damage(path)
    with pytest.raises(DataError, match=message) as info:
        load_source(config("mnist"), tmp_path)
    assert str(path) in str(info.value)


def test_idx_images_and_labels_that_do_not_match_are_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw, gz=False)
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(11), gz=False)
    with pytest.raises(DataError, match="12 images but .* 11"):
        load_source(config("mnist"), tmp_path)


# ---------------------------------------------------------------- CIFAR (python pickles)
def key(name: str, as_bytes: bool):
    return name.encode() if as_bytes else name


def make_cifar10(root: Path, as_bytes=True, per_batch=3) -> tuple[np.ndarray, list[int]]:
    """The real layout; Python 3 pickles of bytes keys, like the files read with encoding='bytes'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = RNG.integers(0, 256, (5 * per_batch + 2, 3, 32, 32), dtype=np.uint8)  # last 2: test
    labels = [int(v) for v in RNG.integers(0, 10, len(images))]
    for i in range(5):
        rows = slice(i * per_batch, (i + 1) * per_batch)
        batch = {key("batch_label", as_bytes): key(f"training batch {i + 1} of 5", as_bytes),
                 key("labels", as_bytes): labels[rows], key("data", as_bytes): images[rows].reshape(-1, 3072),
                 key("filenames", as_bytes): [key(f"img{k}.png", as_bytes) for k in range(per_batch)]}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {key("labels", as_bytes): labels[-2:], key("data", as_bytes): images[-2:].reshape(-1, 3072)}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {key("label_names", as_bytes): [key(n, as_bytes) for n in CIFAR10_NAMES],
            key("num_cases_per_batch", as_bytes): per_batch, key("num_vis", as_bytes): 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return images, labels


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes-keys", "str-keys"])
def test_cifar10_reads_python_pickles(tmp_path, as_bytes):
    images, labels = make_cifar10(tmp_path, as_bytes)
    s = load_source(config("cifar10"), tmp_path)
    assert s.train_x.shape == (15, 3, 32, 32) and s.train_x.dtype == torch.uint8 and s.test_x.shape == (2, 3, 32, 32)
    assert np.array_equal(s.train_x.numpy(), images[:15]) and np.array_equal(s.test_x.numpy(), images[15:])
    assert s.train_y.tolist() == labels[:15] and s.test_y.tolist() == labels[15:] and s.train_y.dtype == torch.long
    assert s.classes == CIFAR10_NAMES


def test_cifar100_uses_the_fine_labels_and_names(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = RNG.integers(0, 256, (9, 3, 32, 32), dtype=np.uint8)
    for name, rows in (("train", slice(0, 6)), ("test", slice(6, 9))):
        n = len(images[rows])
        part = {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(),
                b"fine_labels": [99 - i for i in range(n)], b"coarse_labels": [0] * n,
                b"data": images[rows].reshape(n, 3072)}
        (folder / name).write_bytes(pickle.dumps(part, protocol=2))
    fine = [f"fine{i}".encode() for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": fine, b"coarse_label_names": [b"c"] * 20}))
    s = load_source(config("cifar100"), tmp_path)
    assert s.num_classes == 100 and s.classes[99] == "fine99"
    assert s.train_y.tolist() == [99, 98, 97, 96, 95, 94] and s.test_y.tolist() == [99, 98, 97]
    assert np.array_equal(s.test_x.numpy(), images[6:])


def test_damaged_cifar_pickle_is_a_clear_error_naming_it(tmp_path):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="truncated or corrupt") as info:
        load_source(config("cifar10"), tmp_path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- SVHN (.mat)
def make_svhn(root: Path, n_train=4, n_test=3) -> dict:
    import scipy.io

    folder = root / "svhn"
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)  # N, C, H, W
        digits = np.arange(n) % 10
        y = np.where(digits == 0, 10, digits).reshape(n, 1).astype(np.uint8)  # SVHN writes 10 for the digit 0
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": y})  # H W C N
        made[split] = (images, digits)
    return made


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    made = make_svhn(tmp_path)
    s = load_source(config("svhn"), tmp_path)
    assert s.train_x.shape == (4, 3, 32, 32) and s.train_x.dtype == torch.uint8 and s.train_x.is_contiguous()
    assert np.array_equal(s.train_x.numpy(), made["train"][0]) and np.array_equal(s.test_x.numpy(), made["test"][0])
    assert s.train_y.tolist() == [0, 1, 2, 3] and s.test_y.tolist() == [0, 1, 2] and s.classes[0] == "0"


# ---------------------------------------------------------------- downloads (a stand-in torchvision)
class FakeTorchvision:
    """Installs `torchvision.datasets.<Class>` stand-ins; each records its calls and runs `action`."""

    def __init__(self, monkeypatch, action):
        self.calls = []
        datasets = types.ModuleType("torchvision.datasets")
        for cls in ("MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN"):
            setattr(datasets, cls, self._factory(cls, action))
        package = types.ModuleType("torchvision")
        package.datasets = datasets
        monkeypatch.setitem(sys.modules, "torchvision", package)
        monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)

    def _factory(self, cls, action):
        def construct(root, train=True, download=False, split=None):
            self.calls.append((cls, Path(root), split))
            action(cls, Path(root), split)
        return construct


def offline(cls, root, split):
    """What a dropped connection leaves: a folder and half a file, then an error."""
    partial = {"MNIST": "MNIST/raw/train-images-idx3-ubyte.gz", "FashionMNIST": "FashionMNIST/raw/x.gz",
               "CIFAR10": "cifar-10-python.tar.gz", "CIFAR100": "cifar-100-python.tar.gz",
               "SVHN": f"{split}_32x32.mat"}[cls]
    (root / partial).parent.mkdir(parents=True, exist_ok=True)
    (root / partial).write_bytes(b"half a file")
    raise (OSError if cls.startswith("CIFAR") else urllib.error.URLError)("[Errno -3] name resolution failed")


@pytest.mark.parametrize("name, expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte.gz"),
    ("fashion_mnist", "FashionMNIST/raw/t10k-labels-idx1-ubyte.gz"),
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ("cifar100", "cifar-100-python/meta"),
    ("svhn", "svhn/test_32x32.mat"),
])
def test_failed_download_names_the_files_and_leaves_nothing_behind(tmp_path, monkeypatch, name, expected):
    monkeypatch.setattr(mnist_source, "DEBIAN_FASHION", tmp_path / "not-installed")
    fake = FakeTorchvision(monkeypatch, offline)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(DataError) as info:
        load_source(config(name, download=True), data_dir)
    message = str(info.value)
    assert str(data_dir / expected) in message and "the download failed (" in message
    assert "name resolution failed" in message and "data_dir=" in message and "CNNLAB_DATA" in message
    assert len(fake.calls) == 1 and list(data_dir.iterdir()) == []  # no partial file, no empty folder


def test_download_false_does_not_try(tmp_path, monkeypatch):
    fake = FakeTorchvision(monkeypatch, offline)
    with pytest.raises(DataError, match="dataset.download=false") as info:
        load_source(config("cifar10"), tmp_path)
    assert str(tmp_path / "cifar-10-batches-py" / "test_batch") in str(info.value) and fake.calls == []


def test_downloaded_files_are_read_with_the_fast_reader(tmp_path, monkeypatch):
    made = {}

    def download(cls, root, split):
        made.update(make_idx_set(root / "MNIST" / "raw", gz=True))

    fake = FakeTorchvision(monkeypatch, download)
    s = load_source(config("mnist", download=True), tmp_path)
    [(cls, root, split)] = fake.calls
    assert (cls, root.parent, split) == ("MNIST", tmp_path, None) and root.name.startswith(".cnnlab-download-")
    assert np.array_equal(s.train_x[:, 0].numpy(), made["train-images-idx3-ubyte"])


def test_a_download_appears_in_the_data_folder_only_once_it_is_complete(tmp_path, monkeypatch):
    # another machine's job reading the same shared folder (its lock is on its own machine) must
    # never find a half-written file under its final name
    seen_during = []

    def download(cls, root, split):
        made = make_idx_set(root / "MNIST" / "raw", gz=True)
        seen_during.append(sorted(p.name for p in (tmp_path / "MNIST" / "raw").glob("*")) if made else None)

    FakeTorchvision(monkeypatch, download)
    s = load_source(config("mnist", download=True), tmp_path)
    assert seen_during == [[]] and len(s.train_x) > 0
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in mnist_source.FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["MNIST"]  # the private download folder is gone


def test_a_download_clears_private_folders_left_a_day_ago_and_keeps_recent_ones(tmp_path, monkeypatch):
    old, recent = tmp_path / ".cnnlab-download-killed", tmp_path / ".cnnlab-download-another-node"
    for folder in (old, recent):
        (folder / "MNIST" / "raw").mkdir(parents=True)
        (folder / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"half a file")
    day_ago = os.stat(old).st_mtime - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    FakeTorchvision(monkeypatch, lambda cls, root, split: make_idx_set(root / "MNIST" / "raw", gz=True))
    load_source(config("mnist", download=True), tmp_path)
    assert not old.exists() and recent.exists()  # the recent one may still be being written


def test_a_retry_reuses_what_an_earlier_download_finished(tmp_path, monkeypatch):
    # torchvision skips files already downloaded (checked by md5); a private download folder starts
    # empty, so the finished ones must be offered to it, not fetched again (SVHN's train file: 180 MB)
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "train_32x32.mat").write_bytes(b"a finished, checked download")
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    make_idx_set(tmp_path / "MNIST" / "raw", gz=True)
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"a finished archive")
    fetched = []

    def like_torchvision(cls, root, split):
        wanted = {"SVHN": [f"{split}_32x32.mat"], "CIFAR10": ["cifar-10-python.tar.gz"],
                  "MNIST": [f"MNIST/raw/{n}.gz" for n in mnist_source.FILES]}[cls]
        for name in wanted:
            if not (root / name).is_file():
                fetched.append(name)
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(b"downloaded")
        raise urllib.error.URLError("stop here: only what it fetched matters")

    FakeTorchvision(monkeypatch, like_torchvision)
    for name in ("svhn", "mnist", "cifar10"):
        with pytest.raises(DataError):
            load_source(config(name, download=True), tmp_path)
    assert fetched == ["test_32x32.mat", "MNIST/raw/t10k-images-idx3-ubyte.gz"]  # only files that were not there
    assert (tmp_path / "svhn" / "train_32x32.mat").read_bytes() == b"a finished, checked download"
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == b"a finished archive"


def test_a_download_that_cannot_start_is_the_data_error(tmp_path, monkeypatch):
    from cnnlab.data.sources import download as download_module

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(download_module.tempfile, "mkdtemp", refused)
    FakeTorchvision(monkeypatch, offline)
    with pytest.raises(DataError, match=r"the download failed \(\[Errno 13\] Permission denied"):
        load_source(config("mnist", download=True), tmp_path)


def test_a_download_lands_where_a_link_points_to_another_file_system(tmp_path, monkeypatch):
    import errno

    from cnnlab.data.sources import download as download_module

    real_replace = os.replace

    def across_devices(src, dst):  # a rename out of the private folder crosses file systems
        if ".cnnlab-download-" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(download_module.os, "replace", across_devices)
    made = {}
    FakeTorchvision(monkeypatch, lambda cls, root, split: made.update(make_idx_set(root / "MNIST" / "raw", gz=True)))
    s = load_source(config("mnist", download=True), tmp_path)
    assert np.array_equal(s.train_x[:, 0].numpy(), made["train-images-idx3-ubyte"])
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in mnist_source.FILES)
    (tmp_path / "fresh").write_bytes(b"")  # a file made as the download's were, under this umask
    modes = {(tmp_path / "MNIST" / "raw" / f"{n}.gz").stat().st_mode for n in mnist_source.FILES}
    assert modes == {(tmp_path / "fresh").stat().st_mode}  # readable by others as before, not mkstemp's 0600


def _download_then_hang(data_dir: str, started: str) -> None:
    """A job killed in the middle of its download: half a file written, then it waits to be killed."""
    import time

    from cnnlab.config import DatasetConfig as Config
    from cnnlab.data.sources import load_source as load

    class Hanging:
        def __init__(self, root, train=True, download=False):
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"half a file")
            Path(started).touch()
            time.sleep(60)

    import torchvision.datasets
    torchvision.datasets.MNIST = Hanging
    load(Config(name="mnist", download=True), Path(data_dir))


@pytest.mark.slow  # a fresh interpreter
def test_a_download_killed_midway_leaves_no_partial_file_for_the_next_run(tmp_path, monkeypatch):
    import multiprocessing
    import time

    data_dir, started = tmp_path / "data", tmp_path / "started"
    job = multiprocessing.get_context("spawn").Process(target=_download_then_hang, args=(str(data_dir), str(started)))
    job.start()
    deadline = time.monotonic() + 180  # a fresh interpreter imports torch and torchvision first
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    job.kill()  # SIGKILL: no handler runs, nothing is cleaned up
    job.join(10)
    assert started.exists() and not (data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()
    made = {}
    FakeTorchvision(monkeypatch, lambda cls, root, split: made.update(make_idx_set(root / "MNIST" / "raw", gz=True)))
    s = load_source(config("mnist", download=True), data_dir)  # the next run downloads again, and reads it
    assert np.array_equal(s.train_x[:, 0].numpy(), made["train-images-idx3-ubyte"])


def test_a_failed_second_download_keeps_the_finished_first_file(tmp_path, monkeypatch):
    def train_ok_test_offline(cls, root, split):
        if split == "train":
            root.mkdir(parents=True, exist_ok=True)
            (root / "train_32x32.mat").write_bytes(b"a finished, checked download")
        else:
            offline(cls, root, split)

    fake = FakeTorchvision(monkeypatch, train_ok_test_offline)
    with pytest.raises(DataError, match="download failed"):
        load_source(config("svhn", download=True), tmp_path)
    assert [c[2] for c in fake.calls] == ["train", "test"]
    assert sorted(p.name for p in (tmp_path / "svhn").iterdir()) == ["train_32x32.mat"]


# ---------------------------------------------------------------- image folders
def color_of(c: int, i: int) -> tuple:
    return (40 * c + 20, 100 + 10 * i, 200 - 30 * c)


def image_folder(root: Path, classes=("ants", "bees"), per_class=5, mode="RGB") -> Path:
    """Solid-color images, alternately PNG and JPEG, of varied sizes and aspect ratios."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            color = color_of(c, i) if mode == "RGB" else color_of(c, i)[1]
            Image.new(mode, (20 + 3 * i, 16), color).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def noisy_jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_folder_of_class_subfolders(tmp_path, cnnlab_log):
    root = image_folder(tmp_path / "imgs")
    (root / "ants" / "empty.jpg").write_bytes(b"")
    (root / "bees" / "truncated.jpg").write_bytes(noisy_jpeg_bytes()[:1500])
    (root / "bees" / "notes.txt").write_text("not an image, not listed")
    (root / "bees" / ".hidden.png").write_bytes(b"macOS resource fork, not listed")
    s = load_source(config("folder", path=str(root), image_size=12), tmp_path / "data")
    assert s.classes == ["ants", "bees"] and s.train_x.shape[1:] == (3, 12, 12) and s.train_x.dtype == torch.uint8
    assert len(s.train_x) == 8 and len(s.test_x) == 2 and s.val_x is None
    assert s.test_y.tolist() == [0, 1]  # the fixed test part takes 20% of each class
    for x, y in zip(torch.cat([s.train_x, s.test_x]), torch.cat([s.train_y, s.test_y])):
        colors = [color_of(int(y), i) for i in range(5)]
        pixel = tuple(x[:, 6, 6].tolist())  # solid images stay solid; JPEG is near, PNG exact
        assert min(max(abs(a - b) for a, b in zip(pixel, c)) for c in colors) <= 3
        assert (x == x[:, :1, :1]).all() or x.float().std(dim=(1, 2)).max() < 2
    skipped = [r for r in cnnlab_log.records if "unreadable" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.WARNING
    assert "skipped 2 unreadable" in skipped[0].getMessage()
    assert "ants/empty.jpg, bees/truncated.jpg" in skipped[0].getMessage()


def test_folder_keeps_the_aspect_ratio_by_cropping_the_center(tmp_path):
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    image[:, :, 0] = 255  # red sides ...
    image[:, 8:22] = (0, 255, 0)  # ... a green middle wider than the 10-pixel center square
    (tmp_path / "imgs" / "only").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(image).save(tmp_path / "imgs" / "only" / name)
    s = load_source(config("folder", path=str(tmp_path / "imgs"), image_size=5), tmp_path / "data")
    assert s.train_x.shape == (1, 3, 5, 5) and len(s.test_x) == 1
    assert (s.train_x[0, 1] == 255).all() and (s.train_x[0, 0] == 0).all()


def test_folder_of_grayscale_images_keeps_one_channel_and_mixed_becomes_rgb(tmp_path):
    gray = image_folder(tmp_path / "gray", mode="L")
    s = load_source(config("folder", path=str(gray), image_size=8), tmp_path / "data")
    assert s.shape == (1, 8, 8)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(gray / "ants" / "red.png")
    s = load_source(config("folder", path=str(gray), image_size=8), tmp_path / "data")
    assert s.shape == (3, 8, 8)
    everything = torch.cat([s.train_x, s.test_x])
    grayish = everything[(everything[:, 0] == everything[:, 1]).flatten(1).all(1)]
    assert len(grayish) == len(everything) - 1  # gray images repeat their one channel three times


def test_folder_with_train_and_val_like_the_transfer_learning_tutorial(tmp_path):
    root = tmp_path / "hymenoptera_data"
    image_folder(root / "train")
    image_folder(root / "val", per_class=2)
    s = load_source(config("folder", path=str(root), image_size=8), tmp_path / "data")
    assert s.classes == ["ants", "bees"] and len(s.train_x) == 10 and len(s.val_x) == 4
    assert s.val_y.tolist() == [0, 0, 1, 1] and s.test_x is s.val_x  # no test/: val doubles as test
    image_folder(root / "test", per_class=3)
    s = load_source(config("folder", path=str(root), image_size=8), tmp_path / "data")
    assert len(s.val_x) == 4 and s.test_y.tolist() == [0, 0, 0, 1, 1, 1]


def test_folder_with_train_and_test_only_validates_on_part_of_train(tmp_path):
    root = tmp_path / "imgs"
    image_folder(root / "train")
    image_folder(root / "test", per_class=1)
    s = load_source(config("folder", path=str(root), image_size=8), tmp_path / "data")
    assert len(s.train_x) == 10 and s.val_x is None and s.test_y.tolist() == [0, 1]


def test_folder_cache_is_used_then_invalidated_by_a_change(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "imgs")
    cfg = config("folder", path=str(root), image_size=8)
    first = load_source(cfg, tmp_path / "data")
    cache = tmp_path / "data" / ".cache"
    assert len(list(cache.glob("folder-*.pt"))) == 1 and not list(cache.glob("*.tmp"))

    real_decode, decoded = folder_source.decode_image, []
    monkeypatch.setattr(folder_source, "decode_image", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_source(cfg, tmp_path / "data")
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)

    monkeypatch.setattr(folder_source, "decode_image",
                        lambda path, size: decoded.append(path) or real_decode(path, size))
    changed = root / "ants" / "1.png"
    Image.new("RGB", (20, 16), (1, 2, 3)).save(changed)
    os.utime(changed, ns=(1, 1))  # a new mtime even on file systems with coarse timestamps
    third = load_source(cfg, tmp_path / "data")
    assert len(decoded) == 10 and not torch.equal(first.train_x, third.train_x)
    assert len(list(cache.glob("folder-*.pt"))) == 1  # the stale cache of this folder is gone


def test_a_damaged_cache_is_ignored(tmp_path):
    root = image_folder(tmp_path / "imgs")
    cfg = config("folder", path=str(root), image_size=8)
    first = load_source(cfg, tmp_path / "data")
    (cache_file,) = (tmp_path / "data" / ".cache").glob("folder-*.pt")
    cache_file.write_bytes(b"garbage")
    assert torch.equal(load_source(cfg, tmp_path / "data").train_x, first.train_x)


def _write_all_unreadable(root: Path):
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "a.jpg").write_bytes(b"")
    (root / "cats" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "is empty or has no class subfolders"),
    (lambda root: (root.mkdir(), Image.new("L", (4, 4)).save(root / "a.png")),
     "holds images but no class subfolders"),
    (lambda root: (image_folder(root), (root / "wasps").mkdir()), "wasps holds no images"),
    (_write_all_unreadable, "none of the 2 images in .*imgs could be read"),
    (lambda root: (image_folder(root / "train"), image_folder(root / "val", classes=("wasps",))),
     "class folders that train/ lacks: wasps"),
    (lambda root: image_folder(root, per_class=1), "too few images for a test split"),
])
def test_folder_errors(tmp_path, setup, message):
    setup(tmp_path / "imgs")
    with pytest.raises(DataError, match=message):
        load_source(config("folder", path=str(tmp_path / "imgs")), tmp_path / "data")


# ---------------------------------------------------------------- real data
@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_from_debian(tmp_path):
    s = load_source(config("fashion_mnist"), tmp_path / "empty-data-dir")
    assert s.train_x.shape == (60000, 1, 28, 28) and s.test_x.shape == (10000, 1, 28, 28)
    assert s.train_x.dtype == torch.uint8 and s.train_x.max() == 255
    assert s.train_y.bincount().tolist() == [6000] * 10 and s.test_y.bincount().tolist() == [1000] * 10


def test_embedded_digits_are_scikit_learns():
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    from cnnlab.data.sources.digits import DIGITS_FILE

    digits = sklearn_datasets.load_digits()
    with np.load(DIGITS_FILE) as embedded:
        assert np.array_equal(embedded["images"], np.rint(digits.images * 255 / 16).astype(np.uint8))
        assert np.array_equal(embedded["labels"], digits.target)


def _ensure_with_a_slow_fetch(folder: str, log: str, started: str, wait: bool) -> None:
    """One job of a parallel sweep that needs the files: its download takes 1 s and is recorded. With
    `wait`, it starts only once the other job is inside its download."""
    import time

    from cnnlab.data.sources.download import ensure_files

    def fetch(root):
        with open(log, "a") as f:
            f.write("fetch\n")
        Path(started).touch()
        time.sleep(1.0)
        (root / "a.bin").write_bytes(b"done")

    deadline = time.monotonic() + 60
    while wait and not Path(started).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    ensure_files("toy", [Path(folder)], ["a.bin"], download=True, base=Path(folder), fetch=[fetch], how="")


@pytest.mark.slow  # two fresh interpreters
def test_two_jobs_that_need_the_same_files_download_them_once(tmp_path):
    import multiprocessing

    folder, log, started = tmp_path / "data", tmp_path / "fetches.log", tmp_path / "started"
    folder.mkdir()
    context = multiprocessing.get_context("spawn")
    jobs = [context.Process(target=_ensure_with_a_slow_fetch, args=(str(folder), str(log), str(started), wait))
            for wait in (True, False)]  # the waiting one first: it is ready before the other downloads
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
    assert [job.exitcode for job in jobs] == [0, 0]
    assert log.read_text() == "fetch\n"  # the second waited for the lock, then found the first job's file
    assert sorted(p.name for p in folder.iterdir()) == ["a.bin"]
