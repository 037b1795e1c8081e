"""The test split never chooses anything, and outputs say where the "test" figures come from."""
import logging

import pytest
import torch
from PIL import Image

from cnnlab.config import DatasetConfig
from cnnlab.data import build_data
from cnnlab.data.splits import Splits, carve_validation
from cnnlab.errors import CnnlabError, DataError
from conftest import FAST, run_cli

ONE_EPOCH = ["trainer.max_epochs=1", "trainer.num_threads=1"]


def _splits(with_val: bool) -> Splits:
    x = torch.zeros(20, 1, 4, 4, dtype=torch.uint8)
    y = torch.arange(20) % 2
    return Splits(train_x=x, train_y=y, test_x=x[:6] + 1, test_y=y[:6], classes=["a", "b"],
                  val_x=x[:4] + 2 if with_val else None, val_y=y[:4] if with_val else None)


def test_val_split_zero_without_a_validation_split_is_refused():
    with pytest.raises(DataError, match=r"dataset\.val_split.*dataset\.val_from_test=true"):
        carve_validation(_splits(with_val=False), 0.0, None)
    allowed = carve_validation(_splits(with_val=False), 0.0, None, val_from_test=True)
    assert torch.equal(allowed.val_x, allowed.test_x) and allowed.val_from_test
    carved = carve_validation(_splits(with_val=False), 0.2, None)
    assert len(carved.val_x) == 4 and not carved.val_from_test
    own = carve_validation(_splits(with_val=True), 0.0, None, val_from_test=True)  # nothing to borrow
    assert (own.val_x == 2).all() and not own.val_from_test


def test_the_cli_refuses_validating_on_test_with_one_paragraph(tmp_path):
    done = run_cli(FAST + ONE_EPOCH + ["dataset.val_split=0", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "dataset.val_split" in done.stderr and "dataset.val_from_test=true" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_val_from_test_runs_and_says_so_everywhere(train_run, cnnlab_log):
    results, _ = train_run(ONE_EPOCH + ["dataset.val_split=0", "dataset.val_from_test=true"])
    assert results["val_from_test"] is True and results["test_split"] == "test"
    assert results["final_val_loss"] == pytest.approx(results["test_loss"], rel=1e-6)  # the same images
    warnings = [r for r in cnnlab_log.records if r.levelno == logging.WARNING and "val_from_test" in r.getMessage()]
    assert len(warnings) == 1 and "test" in warnings[0].getMessage()
    assert "validated on the test split" in cnnlab_log.records[-1].getMessage()


def test_an_ordinary_run_records_its_splits(train_run, cnnlab_log):
    results, _ = train_run(ONE_EPOCH)
    assert results["val_from_test"] is False and results["test_split"] == "test"
    closing = cnnlab_log.records[-1].getMessage()
    assert closing.startswith("Test accuracy") and "validation" not in closing
    assert not [r for r in cnnlab_log.records if r.levelno >= logging.WARNING]


def test_a_dataset_with_its_own_validation_split_may_set_val_split_zero(train_run):
    results, _ = train_run(ONE_EPOCH + ["dataset=synthetic", "dataset.num_samples=64", "model=mlp",
                                        "dataset.shape=[1,8,8]"])
    assert results["val_from_test"] is False and results["test_split"] == "test"


def _image_folder(root, per_class):
    for c, name in enumerate(("ants", "bees")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (10, 10), (200 * c + 20, 10 * i, 50)).save(root / name / f"{i}.png")


def test_a_folder_without_test_reports_validation_figures_as_such(train_run, tmp_path, cnnlab_log):
    root = tmp_path / "hymenoptera"
    _image_folder(root / "train", 6)
    _image_folder(root / "val", 2)
    cfg = DatasetConfig(name="folder", path=str(root), image_size=8)
    data = build_data(cfg, tmp_path / "data", torch.device("cpu"), torch.Generator().manual_seed(0))
    assert data.test_split == "val"
    results, _ = train_run(ONE_EPOCH + ["dataset=folder", f"dataset.path={root}", "dataset.image_size=8",
                                        f"data_dir={tmp_path / 'data'}", "model=mlp"])
    assert results["test_split"] == "val" and results["val_from_test"] is False
    closing = cnnlab_log.records[-1].getMessage()
    assert "validation" in closing and "no test split" in closing
    assert [r for r in cnnlab_log.records if r.levelno == logging.WARNING and "test/" in r.getMessage()]
    _image_folder(root / "test", 2)
    data = build_data(cfg, tmp_path / "data", torch.device("cpu"), torch.Generator().manual_seed(0))
    assert data.test_split == "test"


def test_the_refusal_is_a_user_error():
    with pytest.raises(CnnlabError) as err:
        carve_validation(_splits(with_val=False), 0.0, 5, name="digits")
    assert err.value.exit_code == 2 and "digits" in str(err.value)
