"""Every dataset loader on files written here in the exact standard on-disk formats."""
import gzip
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import DatasetConfig
from cnnlab.data.sources import folder as folder_source
from cnnlab.data.sources import load_source
from cnnlab.errors import DataError
from conftest import FASHION_DEBIAN

RNG = np.random.default_rng(0)


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    magic = (0x0803 if array.ndim == 3 else 0x0801).to_bytes(4, "big")
    header = magic + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_mnist(root: Path, folder: str, gz: bool, n_train=12, n_test=5):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {"train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10}
    for name, array in arrays.items():
        write_idx(raw / name, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder, gz):
    arrays = make_mnist(tmp_path, folder, gz)
    s = load_source(DatasetConfig(name=name, download=False), tmp_path)
    assert s.train_x.shape == (12, 1, 28, 28) and s.train_x.dtype == torch.uint8
    assert np.array_equal(s.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert s.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist() and s.test_y.dtype == torch.long
    assert len(s.classes) == 10 and (name == "mnist" or s.classes[9] == "Ankle boot")


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    make_mnist(tmp_path, "MNIST", gz=False)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_source(DatasetConfig(name="mnist", download=False), tmp_path)


def test_missing_files_offline_name_the_paths_and_leave_no_partial_file(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root, train=True, download=False):
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"half a file")  # what a dropped connection leaves
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError) as info:
        load_source(DatasetConfig(name="mnist", download=True), tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in message and "download failed" in message
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_download_false_does_not_try(tmp_path):
    with pytest.raises(DataError, match="dataset.download=false"):
        load_source(DatasetConfig(name="cifar10", download=False), tmp_path)


def test_cifar10_reads_python_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = []
    for i in range(1, 6):
        data = RNG.integers(0, 256, (4, 3072), dtype=np.uint8)
        batch = {"batch_label": f"training batch {i} of 5", "labels": [i % 10] * 4, "data": data,
                 "filenames": [f"img{i}_{k}.png" for k in range(4)]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
        batches.append(batch)
    test = {"labels": [1, 2], "data": RNG.integers(0, 256, (2, 3072), dtype=np.uint8)}
    (folder / "test_batch").write_bytes(pickle.dumps(test))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}))
    s = load_source(DatasetConfig(name="cifar10", download=False), tmp_path)
    assert s.train_x.shape == (20, 3, 32, 32) and s.classes == names
    assert np.array_equal(s.train_x[0].numpy().reshape(-1), batches[0]["data"][0])  # CHW order as stored
    assert s.train_y.tolist() == sum(([i % 10] * 4 for i in range(1, 6)), []) and s.test_y.tolist() == [1, 2]


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        part = {"fine_labels": list(range(n)), "coarse_labels": [0] * n,
                "data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(part))
    fine = [f"class{i}" for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": fine, "coarse_label_names": ["c"] * 20}))
    s = load_source(DatasetConfig(name="cifar100", download=False), tmp_path)
    assert s.num_classes == 100 and s.train_y.tolist() == list(range(6)) and s.test_x.shape == (3, 3, 32, 32)


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    import scipy.io

    folder = tmp_path / "svhn"
    folder.mkdir()
    images = RNG.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    for split in ("train", "test"):
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": images, "y": np.array([[10], [1], [2], [9]])})
    s = load_source(DatasetConfig(name="svhn", download=False), tmp_path)
    assert s.train_y.tolist() == [0, 1, 2, 9]
    assert np.array_equal(s.train_x[2].permute(1, 2, 0).numpy(), images[..., 2])


def _image_folder(root: Path, classes=("ants", "bees"), per_class=5, bad=False):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            color = (40 * c, 100 + i, 50)
            ext = "png" if i % 2 else "jpg"
            Image.new("RGB", (20 + i, 16), color).save(root / name / f"{i}.{ext}")
    if bad:
        (root / classes[0] / "empty.jpg").write_bytes(b"")
        good = (root / classes[1] / "0.jpg").read_bytes()
        (root / classes[1] / "truncated.jpg").write_bytes(good[: len(good) // 3])


def test_folder_of_class_subfolders_resizes_and_skips_unreadable_files(tmp_path, caplog):
    _image_folder(tmp_path / "imgs", bad=True)
    s = load_source(DatasetConfig(name="folder", path=str(tmp_path / "imgs"), image_size=12), tmp_path / "data")
    assert s.classes == ["ants", "bees"] and s.train_x.shape[1:] == (3, 12, 12)
    assert len(s.train_x) + len(s.test_x) == 10 and s.val_x is None
    assert "skipped" in caplog.text and "empty.jpg" in caplog.text


def test_folder_with_train_and_val_like_the_transfer_learning_tutorial(tmp_path):
    _image_folder(tmp_path / "hymenoptera" / "train")
    _image_folder(tmp_path / "hymenoptera" / "val", per_class=2)
    s = load_source(DatasetConfig(name="folder", path=str(tmp_path / "hymenoptera"), image_size=8), tmp_path / "d")
    assert len(s.train_x) == 10 and len(s.val_x) == 4 and torch.equal(s.test_x, s.val_x)
    assert s.val_y.tolist() == [0, 0, 1, 1]


def test_folder_cache_is_used_then_invalidated_by_a_change(tmp_path, monkeypatch):
    _image_folder(tmp_path / "imgs")
    cfg = DatasetConfig(name="folder", path=str(tmp_path / "imgs"), image_size=8)
    first = load_source(cfg, tmp_path / "d")
    monkeypatch.setattr(folder_source, "decode_image", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_source(cfg, tmp_path / "d")
    assert torch.equal(first.train_x, second.train_x)
    Image.new("RGB", (9, 9), (1, 2, 3)).save(tmp_path / "imgs" / "ants" / "new.png")
    with pytest.raises(pytest.fail.Exception):
        load_source(cfg, tmp_path / "d")


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "no class subfolders"),
    (lambda root: (root / "cats").mkdir(parents=True), "holds no images"),
    (lambda root: ((root / "cats").mkdir(parents=True), (root / "cats" / "a.jpg").write_bytes(b"")), "none of the 1"),
])
def test_folder_errors(tmp_path, setup, message):
    setup(tmp_path / "imgs")
    with pytest.raises(DataError, match=message):
        load_source(DatasetConfig(name="folder", path=str(tmp_path / "imgs")), tmp_path / "d")


@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian(tmp_path):
    s = load_source(DatasetConfig(name="fashion_mnist", download=False), tmp_path)
    assert s.train_x.shape == (60000, 1, 28, 28) and s.test_x.shape == (10000, 1, 28, 28)
    assert s.train_y.bincount().tolist() == [6000] * 10


def test_embedded_digits_are_scikit_learns():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    s = load_source(DatasetConfig(name="digits"), Path("/nonexistent"))
    x = torch.cat([s.train_x, s.test_x])[:, 0].float()
    expected = torch.from_numpy(np.rint(digits.images * 255 / 16))
    assert len(x) == 1797
    assert sorted(map(tuple, x.view(1797, -1).tolist())) == sorted(map(tuple, expected.view(1797, -1).tolist()))
