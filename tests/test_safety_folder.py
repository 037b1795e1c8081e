"""Folder datasets use each image file once, with its own label, whatever symlinks lead to it."""
import logging
import os

from PIL import Image

from cnnlab.data.sources.folder import scan_folder


def _images(folder, n, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        Image.new("L", (4, 4), color=i).save(folder / f"{i}.png")


def _used(listing):
    return [(os.path.realpath(p), label) for files in listing.parts.values() for p, label in files]


def test_symlink_loops_and_duplicates_are_used_once_with_a_warning(tmp_path, caplog):
    root = tmp_path / "data"
    _images(root / "cats", 5)
    _images(root / "dogs", 5, start=10)
    outside = tmp_path / "elsewhere" / "more_dogs"  # images kept on another disk: followed
    _images(outside, 3, start=20)
    os.symlink("..", root / "cats" / "up")  # a loop: cats/up/cats/up/... and dogs under cats
    os.symlink("../dogs", root / "cats" / "dogs_again")  # the dogs a second time, labelled cats
    os.symlink("../cats/0.png", root / "dogs" / "copy.png")  # one file, two labels
    os.symlink(outside, root / "dogs" / "more")
    os.symlink(".", root / "loop")  # at the top: would be a class holding the whole dataset
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        listing = scan_folder(root)
    used = _used(listing)
    assert listing.classes == ["cats", "dogs"]
    assert len(used) == len({path for path, _ in used}) == 13  # 5 + 5 + 3, each once
    labels = dict(used)
    assert all(labels[os.path.realpath(root / "cats" / f"{i}.png")] == 0 for i in range(5))
    assert all(labels[os.path.realpath(root / "dogs" / f"{i}.png")] == 1 for i in range(10, 15))
    assert all(labels[os.path.realpath(outside / f"{i}.png")] == 1 for i in range(20, 23))
    train = {os.path.realpath(p) for p, _ in listing.parts["train"]}
    test = {os.path.realpath(p) for p, _ in listing.parts["test"]}
    assert not train & test  # nothing leaks from training into the test split
    text = caplog.text
    assert "did not follow 2 symlinked folder(s)" in text and "cats/up" in text and "cats/dogs_again" in text
    assert "reachable by more than one path" in text and "dogs/copy.png" in text
    assert "ignoring" in text and "loop" in text


def test_a_dataset_without_links_gives_no_warning(tmp_path, caplog):
    _images(tmp_path / "train" / "a", 3)
    _images(tmp_path / "train" / "b", 3, start=5)
    _images(tmp_path / "val" / "a", 2, start=10)
    _images(tmp_path / "val" / "b", 2, start=15)
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        listing = scan_folder(tmp_path)
    assert len(_used(listing)) == 10 and not caplog.text
