"""Sanity modes: trainer.fast_dev_run (one batch each, nothing written) and trainer.overfit_batches=N."""
import json

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.train.sanity import limit
from tests.conftest import FAST, compose_config, run_cli


def test_fast_dev_run_runs_one_batch_each_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    done = run_cli(FAST + ["trainer.fast_dev_run=true", "trainer.diagnostics=true", "trainer.num_threads=1",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(64 train / 144 val / 256 test images" in done.stdout  # one batch of each split
    assert "Epoch   1/1" in done.stdout and "nothing was written" in done.stdout
    # no checkpoints, results.json, TensorBoard events, pictures or .hydra/: the console lines only
    assert sorted(p.name for p in run_dir.rglob("*")) == ["train.log"]
    assert "Epoch   1/1" in (run_dir / "train.log").read_text()
    assert not (tmp_path / "outputs").exists()


def test_fast_dev_run_in_process_leaves_the_folder_empty(train_run, tmp_path):
    results, run_dir = train_run(["trainer.fast_dev_run=true", "trainer.max_epochs=5", "trainer.diagnostics=true", "trainer.num_threads=1"])
    assert results["epochs"] == 1 and len(results["history"]) == 1
    assert list(run_dir.iterdir()) == []


def test_fast_dev_run_cannot_resume():
    with pytest.raises(ConfigError, match="fast_dev_run"):
        compose_config(FAST + ["trainer.fast_dev_run=true", "resume=true"])


def test_overfit_batches_trains_on_the_same_batches_every_epoch():
    cfg = compose_config(FAST + ["trainer.overfit_batches=3", "dataset.batch_size=32"])
    from cnnlab.data import build_data
    from cnnlab.config import default_data_dir

    data = build_data(cfg.dataset, default_data_dir(), torch.device("cpu"), torch.Generator().manual_seed(0))
    limited = limit(data, cfg)
    assert len(limited.train) == 3 and len(limited.train.x) == 96
    assert limited.val is data.val and limited.test is data.test  # evaluation is unchanged
    epochs = []
    for epoch in (1, 2, 3):
        limited.train.set_epoch(epoch)
        epochs.append([y.tolist() for _, y in limited.train])
    assert epochs[0] == epochs[1] == epochs[2]
    assert len(set(sum(epochs[0], []))) == 10  # drawn from the shuffled set, not its first 96 images


def test_overfit_batches_reaches_100_percent_and_says_so(tmp_path):
    run_dir = tmp_path / "run"
    done = run_cli(FAST + ["trainer.overfit_batches=2", "trainer.max_epochs=30", "trainer.num_threads=1",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["overfit_batches"] == 2 and results["final_train_acc"] >= 0.99
    assert "training on the same 2 batches (128 images) every epoch" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("Overfit 2 batches: train accuracy 100.00%. Test accuracy")


def test_a_normal_run_records_overfit_batches_as_off(train_run):
    results, run_dir = train_run(["trainer.max_epochs=1", "trainer.num_threads=1", "dataset.train_size=300"])
    assert json.loads((run_dir / "results.json").read_text())["overfit_batches"] == 0
