"""The course's own image sets, one word each: downloaded once as a zip, verified, unpacked, read as folders.

  cats_vs_dogs   Keras's filtered Kaggle cats vs dogs (seed 000's kind of data): cats_and_dogs_filtered.zip,
                 train/{cats,dogs} 2,000 images, validation/{cats,dogs} 1,000
  hymenoptera    PyTorch's transfer-learning tutorial (seed 002): hymenoptera_data.zip,
                 train/{ants,bees} ~245 images, val/{ants,bees} ~153

The zip lands in data_dir and is checked before it is unpacked: every member's CRC (zipfile's testzip)
and the class folders of every split. Neither source publishes a checksum, so the archive's sha256 is
written beside it at first use (NAME.zip.sha256, `sha256sum -c` format) and a later copy must match
it. A truncated, corrupt or different archive is deleted with a message saying so. It unpacks into
data_dir/<top folder of the zip> (through a temporary folder and a rename, so never half), and later
runs read that folder offline; the zip may then be deleted.

Both sets have a train and a validation folder only. Half of each class of the validation folder
(a fixed draw) is held out as the test split, so no choice made on validation (best epoch, early
stopping, the report's winner) ever sees a test image. The training images are interleaved by class
(a fixed shuffle within each class), so dataset.train_size=110 takes 55 of each.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import torch

from cnnlab import atomic
from cnnlab.config import DatasetConfig
from cnnlab.data_schema import as_folder
from cnnlab.data.sources.download import ensure_files
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

log = logging.getLogger("cnnlab")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TEST_FRACTION = 0.5  # of each class of the validation folder
SPLIT_SEED = 0


@dataclass(frozen=True)
class Archive:
    url: str
    folder: str  # the zip's top folder, unpacked as data_dir/<folder>
    splits: tuple  # ((split folder, (class folder, ...)), ...): what a genuine archive holds

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]


ARCHIVES = {
    "cats_vs_dogs": Archive("https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
                            "cats_and_dogs_filtered", (("train", ("cats", "dogs")), ("validation", ("cats", "dogs")))),
    "hymenoptera": Archive("https://download.pytorch.org/tutorial/hymenoptera_data.zip",
                           "hymenoptera_data", (("train", ("ants", "bees")), ("val", ("ants", "bees")))),
}


def load_cats_vs_dogs(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return load_archive(cfg, data_dir, ARCHIVES["cats_vs_dogs"])


def load_hymenoptera(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return load_archive(cfg, data_dir, ARCHIVES["hymenoptera"])


def load_archive(cfg: DatasetConfig, data_dir: Path, archive: Archive) -> Splits:
    from cnnlab.data.sources.folder import load_folder

    root = unpacked_folder(cfg, data_dir, archive)
    splits = load_folder(as_folder(cfg, str(root)), data_dir)  # train/ + validation/: val doubles as test
    held_x, held_y = (splits.val_x, splits.val_y) if splits.val_x is not None else (splits.test_x, splits.test_y)
    val_x, val_y, test_x, test_y = _hold_out_test(held_x, held_y)
    order = _interleaved(splits.train_y)
    # the held-out half is a real test split: no choice ever sees it, so its figures are test figures
    return replace(splits, train_x=splits.train_x[order], train_y=splits.train_y[order], val_x=val_x, val_y=val_y,
                   test_x=test_x, test_y=test_y, test_split="test")


# ---------------------------------------------------------------- download, verify, unpack
def unpacked_folder(cfg: DatasetConfig, data_dir: Path, archive: Archive) -> Path:
    """data_dir/<folder> with every split's class folders, downloading and unpacking the zip if needed."""
    root = data_dir / archive.folder
    missing = _missing_folders(root, archive)
    if not missing:
        return root
    if root.exists():  # cnnlab renames a finished unpacking into place, so this copy came from elsewhere
        raise DataError(f"{root} exists but lacks {', '.join(missing)}: it is not a complete copy of {archive.file}. "
                        f"Delete it and run again (cnnlab unpacks {data_dir / archive.file} there, downloading it "
                        "first if it is not there).")
    zip_path = data_dir / archive.file
    how = (f"It comes from {archive.url}: download it and put it at {zip_path} (not unpacked; cnnlab checks and "
           "unpacks it).")
    ensure_files(cfg.name, [data_dir], [archive.file], download=cfg.download, base=data_dir,
                 fetch=[lambda root: download(archive.url, root / archive.file)], how=how, via="urllib")
    verify(zip_path, archive)
    _unpack(zip_path, archive, data_dir)
    return root


def download(url: str, target: Path) -> None:
    """url -> target, through a temporary file beside it: target appears complete or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info(f"downloading {url}")  # into a private folder first (download.py): ensure_files names where it lands
    with urllib.request.urlopen(url, timeout=60) as response:
        atomic.replace_with(target, lambda f: shutil.copyfileobj(response, f, 1 << 20))


def verify(zip_path: Path, archive: Archive) -> str:
    """The archive's sha256 after checking its CRCs, its layout and the recorded sha256; a bad archive is deleted."""
    def reject(why: str) -> DataError:
        zip_path.unlink(missing_ok=True)
        return DataError(f"{zip_path} {why}, so it was deleted. Run again to download it from {archive.url}, or put "
                         f"a good copy at {zip_path}.")

    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC-32
            names = zf.namelist()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise reject(f"is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if bad is not None:
        raise reject(f"is corrupt: {bad} fails its CRC check")
    missing = [f"{archive.folder}/{split}/{cls}/" for split, classes in archive.splits for cls in classes
               if not any(n.startswith(f"{archive.folder}/{split}/{cls}/") and n.lower().endswith(IMAGE_SUFFIXES)
                          for n in names)]
    if missing:
        raise reject(f"is not {archive.file} from {archive.url}: it has no images in {', '.join(missing)}")
    digest = _sha256(zip_path)
    record = zip_path.with_name(zip_path.name + ".sha256")
    if record.is_file():
        recorded = record.read_text().split()[0] if record.read_text().split() else ""
        if recorded != digest:
            zip_path.unlink(missing_ok=True)
            raise DataError(f"{zip_path} has sha256 {digest}, but {record} recorded {recorded} at its first download: "
                            f"it is another file, so it was deleted. Run again to download it from {archive.url}; if "
                            f"the source itself changed, delete {record} too.")
    else:
        atomic.write_text(record, f"{digest}  {zip_path.name}\n")
    return digest


def _unpack(zip_path: Path, archive: Archive, data_dir: Path) -> None:
    root = data_dir / archive.folder
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{archive.folder}-"))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [m for m in zf.infolist() if _inside(m.filename, archive.folder)]
            zf.extractall(tmp, members=members)
        try:
            os.replace(tmp / archive.folder, root)
        except OSError:
            # another job of a parallel sweep renamed its complete copy into place first: use that one
            if not root.is_dir() or _missing_folders(root, archive):
                raise
            log.info(f"{root} was unpacked by another job meanwhile; using it")
            return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(f"unpacked {zip_path.name} into {root}")


def _inside(name: str, folder: str) -> bool:
    """Members under the top folder only, and none that could climb out of it."""
    parts = PurePosixPath(name).parts
    return len(parts) > 1 and parts[0] == folder and ".." not in parts and not name.startswith("/")


def _missing_folders(root: Path, archive: Archive) -> list[str]:
    missing = []
    for split, classes in archive.splits:
        for cls in classes:
            folder = root / split / cls
            if not folder.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
                missing.append(f"{split}/{cls}/")
    return missing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- splits
def _hold_out_test(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed TEST_FRACTION of each class of the validation folder is the test split; the rest validates."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    val_idx, test_idx = [], []
    for label in y.unique().tolist():
        members = (y == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = min(len(members) - 1, max(1, round(len(members) * TEST_FRACTION)))
        test_idx.append(members[:n_test])
        val_idx.append(members[n_test:])
    val = torch.cat(val_idx).sort().values
    test = torch.cat(test_idx).sort().values
    return x[val], y[val], x[test], y[test]


def _interleaved(y: torch.Tensor) -> torch.Tensor:
    """Indices taking one image of each class in turn (each class in a fixed shuffled order)."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    queues = []
    for label in y.unique().tolist():
        members = (y == label).nonzero().flatten()
        queues.append(members[torch.randperm(len(members), generator=generator)].tolist())
    order = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    return torch.tensor(order, dtype=torch.long)
