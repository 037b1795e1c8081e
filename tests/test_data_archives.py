"""dataset=cats_vs_dogs and dataset=hymenoptera: download, verification, unpacking and loading, offline.

The archives are built here with the real layout and file names (small PIL images, one colour per
class) and served from file:// URLs.
"""
from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.config import DatasetConfig
from cnnlab import registry
from cnnlab.data.sources import load_source
from cnnlab.data.sources import archives
from cnnlab.errors import DataError

COLOURS = [(200, 40, 40), (40, 40, 200)]  # class 0, class 1
# the real archives' file names: cat.0.jpg ... in train, cat.2000.jpg ... in validation; ants' numbers
NAMES = {"cats_vs_dogs": {("train", "cats"): "cat.{}.jpg", ("train", "dogs"): "dog.{}.jpg",
                          ("validation", "cats"): "cat.{}.jpg", ("validation", "dogs"): "dog.{}.jpg"},
         "hymenoptera": {("train", "ants"): "{}_ant.jpg", ("train", "bees"): "{}_bee.jpg",
                         ("val", "ants"): "{}_ant.jpg", ("val", "bees"): "{}_bee.jpg"}}
PER_SPLIT = {0: 5, 1: 4}  # images per class: 5 in train, 4 in validation


def jpeg(colour, size=(24, 18)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def build_zip(path: Path, name: str, skip=(), extra=None, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A small archive with the real one's layout; `skip` leaves out (split, class) folders."""
    archive = archives.ARCHIVES[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for s, (split, classes) in enumerate(archive.splits):
            for c, cls in enumerate(classes):
                if (split, cls) in skip:
                    continue
                for i in range(PER_SPLIT[s]):
                    number = 2000 * s + i
                    zf.writestr(f"{archive.folder}/{split}/{cls}/{NAMES[name][split, cls].format(number)}",
                                jpeg(COLOURS[c]))
        zf.writestr(f"{archive.folder}/vectorize.py", "# a stray file, as in the real archive\n")
        for member, data in (extra or {}).items():
            zf.writestr(member, data)
    return path


@pytest.fixture(params=sorted(archives.ARCHIVES))
def served(request, tmp_path, monkeypatch):
    """(dataset name, data_dir, the archive's file:// source): the archive module downloads from there."""
    name = request.param
    archive = archives.ARCHIVES[name]
    source = build_zip(tmp_path / "server" / archive.file, name)
    monkeypatch.setitem(archives.ARCHIVES, name, dataclasses.replace(archive, url=source.as_uri()))
    return name, tmp_path / "data", source


def config(name, **kw) -> DatasetConfig:
    return DatasetConfig(name=name, **{"image_size": 16, **kw})


def test_both_sets_are_registered():
    assert {"cats_vs_dogs", "hymenoptera"} <= set(registry.names("dataset"))


def test_download_verify_unpack_and_load(served):
    name, data_dir, source = served
    archive = archives.ARCHIVES[name]
    s = load_source(config(name), data_dir)
    zip_path = data_dir / archive.file
    assert zip_path.read_bytes() == source.read_bytes()
    record = (data_dir / f"{archive.file}.sha256").read_text().split()
    assert record == [archives._sha256(zip_path), archive.file]  # sha256sum -c format
    assert (data_dir / archive.folder / archive.splits[0][0]).is_dir()
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".") and p.name != ".cache"]  # no temp files

    assert s.classes == list(archive.splits[0][1])
    assert s.train_x.shape == (10, 3, 16, 16) and s.train_x.dtype == torch.uint8
    assert s.train_y.tolist() == [0, 1] * 5  # interleaved: train_size=110 takes 55 of each
    # the validation folder's 8 images: half of each class tests, the other half validates
    assert sorted(s.val_y.tolist()) == [0, 0, 1, 1] and sorted(s.test_y.tolist()) == [0, 0, 1, 1]
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y)):
        centre = x[:, :, 8, 8].float()
        expected = torch.tensor([COLOURS[int(label)] for label in y], dtype=torch.float32)
        assert (centre - expected).abs().max() <= 6  # every image is its own class's colour (JPEG)


def test_the_test_half_is_fixed_and_disjoint_from_validation(served):
    name, data_dir, _ = served
    a = load_source(config(name), data_dir)
    b = load_source(config(name), data_dir)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.val_x, b.val_x)
    archive = archives.ARCHIVES[name]
    root = data_dir / archive.folder / archive.splits[1][0]
    files = sorted(root.rglob("*.jpg"))
    assert len(files) == len(a.val_x) + len(a.test_x) == 8


def test_found_offline_afterwards_even_without_the_zip(served):
    name, data_dir, source = served
    load_source(config(name), data_dir)
    source.unlink()  # the server is gone
    (data_dir / archives.ARCHIVES[name].file).unlink()
    s = load_source(config(name, download=False), data_dir)
    assert len(s.train_x) == 10


def test_a_zip_put_in_place_by_hand_is_used_offline(tmp_path):
    data_dir = tmp_path / "data"
    build_zip(data_dir / archives.ARCHIVES["cats_vs_dogs"].file, "cats_vs_dogs")
    s = load_source(config("cats_vs_dogs", download=False), data_dir)
    assert s.classes == ["cats", "dogs"] and len(s.train_x) == 10


@pytest.mark.parametrize("name", sorted(archives.ARCHIVES))
def test_offline_without_the_files_names_the_url_and_the_place(tmp_path, name):
    archive = archives.ARCHIVES[name]
    with pytest.raises(DataError) as info:
        load_source(config(name, download=False), tmp_path)
    message = str(info.value)
    assert archive.url in message and str(tmp_path / archive.file) in message
    assert "dataset.download=false" in message


def test_a_failed_download_names_the_url_and_leaves_nothing(served):
    name, data_dir, source = served
    source.unlink()
    with pytest.raises(DataError) as info:
        load_source(config(name), data_dir)
    assert "download failed" in str(info.value) and source.as_uri() in str(info.value)
    assert not data_dir.exists() or not any(data_dir.iterdir())


def _corrupt_a_member(path: Path) -> None:
    """Flip bytes inside one stored member's data: the zip still opens, its CRC no longer matches."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".jpg"))
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 100, start + 110):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    (_corrupt_a_member, "fails its CRC check"),
    (lambda p: p.write_bytes(b"<html>404 Not Found</html>"), "truncated or corrupt"),
])
def test_a_damaged_archive_is_deleted_with_a_clear_error(tmp_path, damage, message):
    archive = archives.ARCHIVES["cats_vs_dogs"]
    zip_path = build_zip(tmp_path / archive.file, "cats_vs_dogs", compression=zipfile.ZIP_STORED)
    damage(zip_path)
    with pytest.raises(DataError, match=message) as info:
        load_source(config("cats_vs_dogs", download=False), tmp_path)
    assert "deleted" in str(info.value) and archive.url in str(info.value)
    assert not zip_path.exists() and not (tmp_path / archive.folder).exists()
    assert not (tmp_path / f"{archive.file}.sha256").exists()  # nothing recorded from a bad file


def test_an_archive_without_a_class_folder_is_refused(tmp_path):
    archive = archives.ARCHIVES["hymenoptera"]
    zip_path = build_zip(tmp_path / archive.file, "hymenoptera", skip={("val", "bees")})
    with pytest.raises(DataError, match="hymenoptera_data/val/bees/"):
        load_source(config("hymenoptera", download=False), tmp_path)
    assert not zip_path.exists()


def test_an_archive_that_differs_from_the_recorded_sha256_is_refused(tmp_path):
    archive = archives.ARCHIVES["cats_vs_dogs"]
    zip_path = build_zip(tmp_path / archive.file, "cats_vs_dogs")
    load_source(config("cats_vs_dogs", download=False), tmp_path)
    recorded = (tmp_path / f"{archive.file}.sha256").read_text()
    (tmp_path / archive.folder).rename(tmp_path / "old")  # as if the unpacked copy had been deleted
    build_zip(zip_path, "cats_vs_dogs", extra={f"{archive.folder}/train/cats/cat.999.jpg": jpeg(COLOURS[0])})
    with pytest.raises(DataError, match="recorded") as info:
        load_source(config("cats_vs_dogs", download=False), tmp_path)
    assert "deleted" in str(info.value) and not zip_path.exists()
    assert (tmp_path / f"{archive.file}.sha256").read_text() == recorded  # the record stays


def test_an_incomplete_unpacked_folder_is_not_overwritten(tmp_path):
    archive = archives.ARCHIVES["cats_vs_dogs"]
    build_zip(tmp_path / archive.file, "cats_vs_dogs")
    (tmp_path / archive.folder / "train" / "cats").mkdir(parents=True)
    with pytest.raises(DataError, match="not a complete copy"):
        load_source(config("cats_vs_dogs", download=False), tmp_path)


def test_a_job_that_unpacks_second_keeps_the_first_jobs_folder(tmp_path, cnnlab_log):
    """Two jobs of a parallel sweep unpack the same zip at once: the one that finishes second finds
    the folder in place (it failed with 'Directory not empty' in a CI run) and uses it."""
    archive = archives.ARCHIVES["cats_vs_dogs"]
    zip_path = build_zip(tmp_path / archive.file, "cats_vs_dogs")
    first = load_source(config("cats_vs_dogs", download=False), tmp_path)
    archives._unpack(zip_path, archive, tmp_path)  # the second job, which had found no folder when it began
    assert "unpacked by another job" in cnnlab_log.text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{archive.folder}-")]  # its copy removed
    again = load_source(config("cats_vs_dogs", download=False), tmp_path)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)


def test_a_second_unpacking_onto_an_incomplete_folder_still_fails(tmp_path):
    archive = archives.ARCHIVES["cats_vs_dogs"]
    zip_path = build_zip(tmp_path / archive.file, "cats_vs_dogs")
    (tmp_path / archive.folder / "train" / "cats").mkdir(parents=True)
    (tmp_path / archive.folder / "train" / "cats" / "note.txt").write_text("not an image")
    with pytest.raises(OSError):
        archives._unpack(zip_path, archive, tmp_path)


def test_members_outside_the_top_folder_are_not_unpacked(tmp_path):
    archive = archives.ARCHIVES["cats_vs_dogs"]
    build_zip(tmp_path / "data" / archive.file, "cats_vs_dogs",
              extra={"evil.txt": "x", f"{archive.folder}/../evil2.txt": "x", "__MACOSX/._cat.0.jpg": "x"})
    load_source(config("cats_vs_dogs", download=False), tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if not p.name.startswith(".")) == \
        sorted([archive.file, f"{archive.file}.sha256", archive.folder])
    assert not (tmp_path / "evil2.txt").exists()


def test_train_size_takes_both_classes_in_a_run(served, train_run):
    name, data_dir, _ = served
    results, _ = train_run([f"dataset={name}", f"data_dir={data_dir}", "dataset.image_size=16",
                            "dataset.train_size=4", "dataset.batch_size=4", "trainer.max_epochs=1",
                            "trainer.num_threads=1"])
    assert results["status"] == "completed"
