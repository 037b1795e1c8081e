"""Every file cnnlab writes is replaced whole: a write that fails before it completes leaves the old file.

Each writer below is made to fail at the last moment, when the new file would take its name (the file
system refuses the rename, as after a crash or a full disk). A writer that writes in place has already
destroyed the old file by then; one that goes through cnnlab.atomic has not touched it.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

OLD = b"the old file, intact\n"


def _histograms(target: Path) -> None:
    from cnnlab.train.histograms import Histograms

    writer = SimpleNamespace(add_histogram=lambda *a, **k: None, add_scalar=lambda *a, **k: None)
    loader = SimpleNamespace(transform=lambda x: x, x=torch.randn(8, 4), y=torch.randint(0, 2, (8,)))
    ctx = SimpleNamespace(run_dir=target.parent, data=SimpleNamespace(val=loader), writer=writer,
                          raw_model=nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)),
                          objective=F.cross_entropy)
    Histograms(ctx, 0)  # records epoch 0 and rewrites activations.json


def _diagnostics_png(target: Path) -> None:
    from cnnlab.diagnostics import _save_png

    _save_png(np.zeros((4, 4, 3), dtype=np.uint8), target)


def _report_figure(target: Path) -> None:
    from cnnlab.report.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(plt, fig, target)


def _results(target: Path) -> None:
    from cnnlab.results import write_results

    write_results(target.parent, {"status": "completed", "test_acc": 0.5})


def _checkpoint(target: Path) -> None:
    from cnnlab.train.checkpoint import save_checkpoint

    save_checkpoint({"model": {"w": torch.zeros(2)}}, target)


def _sweep_state(target: Path) -> None:
    from cnnlab.sweep import _write_json

    _write_json(target, {"jobs": 3})


def _download(target: Path) -> None:
    from cnnlab.data.sources.archives import download

    source = target.parent / "served.zip"
    source.write_bytes(b"new bytes from the server")
    download(source.as_uri(), target)


def _decoded_image_cache(target: Path) -> None:
    from cnnlab.data.sources.folder import _write_cache

    _write_cache(target, {"x": torch.zeros(1, dtype=torch.uint8)})


def _lr_finder_figure(target: Path) -> None:
    from cnnlab.lrfind import _plot

    curve = {"lr": [1e-4, 1e-3, 1e-2], "loss": [2.3, 1.9, 4.0], "smoothed_loss": [2.3, 2.1, 2.8]}
    _plot(target, {"curve": curve, "suggested_lr": 1e-3, "model": "mlp", "dataset": "digits", "optim": "adam"})


WRITERS = {  # writer -> the file name it writes
    "activations.json": (_histograms, "activations.json"),
    "diagnostics png": (_diagnostics_png, "confusion_matrix.png"),
    "report figure": (_report_figure, "train_vs_val.png"),
    "results.json": (_results, "results.json"),
    "checkpoint": (_checkpoint, "last.pt"),
    "sweep state": (_sweep_state, "state.json"),
    "download": (_download, "archive.zip"),
    "decoded image cache": (_decoded_image_cache, "folder-abc.pt"),
    "lr finder figure": (_lr_finder_figure, "lr_find.png"),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_write_that_fails_before_it_completes_leaves_the_old_file(writer, tmp_path, monkeypatch):
    write, name = WRITERS[writer]
    target = tmp_path / name
    target.write_bytes(OLD)
    real_replace = os.replace

    def refused(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            raise OSError(errno.EIO, "Input/output error")  # the last step of the write
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refused)
    try:
        write(target)
    except Exception:  # noqa: BLE001 - each writer words the failure its own way; the file is the point
        pass
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}")) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_written_file_is_as_readable_as_one_written_plainly(writer, tmp_path):
    write, name = WRITERS[writer]
    write(tmp_path / name)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_replace_with_keeps_the_old_file_when_the_writer_fails_halfway(tmp_path):
    from cnnlab import atomic

    target = tmp_path / "results.json"
    target.write_bytes(OLD)

    def half(f):
        f.write(b'{"test_acc": 0.')
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        atomic.replace_with(target, half)
    assert target.read_bytes() == OLD and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    atomic.write_text(target, json.dumps({"test_acc": 0.5}), durable=True)
    assert json.loads(target.read_text()) == {"test_acc": 0.5}


def test_a_write_removes_what_crashed_writes_of_the_same_file_left_and_keeps_a_live_writers(tmp_path):
    from cnnlab import atomic

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True).stdout.strip()
    theirs = tmp_path / f".activations.json.{alive.pid}.abc123.tmp"
    stale = tmp_path / f".activations.json.{ended}.xyz789.tmp"
    other_file = tmp_path / f".results.json.{ended}.xyz789.tmp"  # another file's: its own write cleans it
    for path in (theirs, stale, other_file):
        path.write_bytes(b"partial")
    try:
        atomic.write_text(tmp_path / "activations.json", "{}")
        assert theirs.exists() and not stale.exists() and other_file.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_name_with_glob_characters_is_written_and_cleaned_as_itself(tmp_path):
    from cnnlab import atomic

    target = tmp_path / "run[1].json"
    neighbour = tmp_path / ".run1.json.999999999.x.tmp"  # would match the unescaped pattern run[1]
    neighbour.write_bytes(b"not ours")
    atomic.write_text(target, "{}")
    assert target.read_text() == "{}" and neighbour.exists()
