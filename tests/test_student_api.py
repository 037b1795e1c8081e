"""The Python API: cnnlab.train / load_runs / runs_frame, in-process, as a notebook uses them."""
import json
import logging
import random
import subprocess
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import cnnlab
from cnnlab.errors import ConfigError
from tests.conftest import FAST, run_cli

SMALL = FAST + ["trainer.max_epochs=1", "dataset.train_size=300", "trainer.num_threads=1"]


def test_import_cnnlab_loads_neither_torch_nor_hydra():
    code = "import cnnlab, sys; print(sorted(m for m in ('torch', 'hydra', 'omegaconf') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_two_calls_in_a_row_leak_nothing(tmp_path):
    threads = torch.get_num_threads()
    root_handlers, cnnlab_handlers = list(logging.getLogger().handlers), list(logging.getLogger("cnnlab").handlers)
    random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), torch.rand(1).item())
    random.seed(123)
    torch.manual_seed(123)

    a = cnnlab.train(SMALL + ["model=mlp", "seed=1", f"hydra.run.dir={tmp_path / 'a'}"])
    b = cnnlab.train(SMALL + ["trainer.num_threads=2", "optim=sgd", "optim.lr=0.1", "seed=2",
                              f"hydra.run.dir={tmp_path / 'b'}"])
    again = cnnlab.train(SMALL + ["model=mlp", "seed=1", f"hydra.run.dir={tmp_path / 'again'}"])

    assert (random.random(), torch.rand(1).item()) == expected  # the caller's generators are untouched
    assert torch.get_num_threads() == threads
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger("cnnlab").handlers == cnnlab_handlers
    assert not GlobalHydra.instance().is_initialized() and HydraConfig.instance().cfg is None
    # the second job had its own settings, and the third is the first again, number for number
    assert (a["model"], a["optim"], b["model"], b["optim"]) == ("mlp", "adam", "lecture_cnn", "sgd")
    assert again["history"] == [{**row, "seconds": again["history"][i]["seconds"]} for i, row in
                                enumerate(a["history"])]
    assert again["test_acc"] == a["test_acc"]
    for result, name in ((a, "a"), (b, "b"), (again, "again")):
        assert result["run_dir"] == str(tmp_path / name)
        saved = json.loads((tmp_path / name / "results.json").read_text())
        assert saved["test_acc"] == result["test_acc"] and "run_dir" not in saved
        assert "Test accuracy" in (tmp_path / name / "train.log").read_text()


def test_default_run_folders_are_named_as_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cnnlab.train(SMALL)
    second = cnnlab.train(SMALL)  # most likely the same second: TIME-1, never the same folder
    assert first["run_dir"] != second["run_dir"]
    for result in (first, second):
        folder = tmp_path / "outputs"
        assert result["run_dir"].startswith(str(folder)) and (folder / result["run_dir"]).is_dir()


def test_a_nested_dict_composes_the_same_config_as_the_list(tmp_path):
    from cnnlab.api import as_overrides

    listed = as_overrides({"model": "mlp", "optim": {"lr": 0.05, "betas": [0.8, 0.9]},
                           "trainer": {"early_stopping": {"patience": None}, "summary": False},
                           "dataset.path": "/a b/c"})
    assert listed == ["model=mlp", "optim.lr=0.05", "optim.betas=[0.8,0.9]",
                      "trainer.early_stopping.patience=null", "trainer.summary=false", "dataset.path='/a b/c'"]
    by_dict = cnnlab.train({"trainer": {"max_epochs": 1, "num_threads": 1, "progress": False, "summary": False,
                                        "diagnostics": False}, "dataset": {"train_size": 300}, "device": "cpu",
                            "model": "mlp", "optim": {"lr": 0.01}, "hydra": {"run": {"dir": str(tmp_path / "d")}}})
    by_list = cnnlab.train(SMALL + ["model=mlp", "optim.lr=0.01", f"hydra.run.dir={tmp_path / 'l'}"])
    assert (tmp_path / "d/.hydra/config.yaml").read_text() == (tmp_path / "l/.hydra/config.yaml").read_text()
    assert by_dict["test_acc"] == by_list["test_acc"]


@pytest.mark.parametrize("bad", [["optim.lrr=0.1"], ["optim.lr=-1"], ["model=nope"], ["trainer.max_epochs=abc"],
                                 ["model=resnet18", "model.inception=naive"],  # another family's key
                                 ["dataset=mnist", "dataset.num_samples=3"]])  # another source's key
def test_a_bad_override_raises_the_message_the_command_line_prints(tmp_path, bad, capfd):
    with pytest.raises(ConfigError) as caught:
        cnnlab.train(SMALL + bad + [f"hydra.run.dir={tmp_path / 'run'}"])
    assert capfd.readouterr().err == ""  # the exception is the whole message: nothing printed besides
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    cli = run_cli(SMALL + bad + [f"hydra.run.dir={tmp_path / 'cli'}"], cwd=tmp_path)
    # cnnlab's own checks and Hydra's composition errors alike: word for word what the command prints
    assert cli.returncode == 2 and f"cnnlab: error: {message}" in cli.stderr
    assert not GlobalHydra.instance().is_initialized()


def test_load_runs_and_runs_frame_read_a_folder_back(tmp_path):
    sweep = tmp_path / "sweep"
    for lr in (0.01, 0.001):
        cnnlab.train(SMALL + [f"optim.lr={lr}", f"hydra.run.dir='{sweep / f'optim.lr={lr}'}'"])
    with pytest.raises(ConfigError):
        cnnlab.train(SMALL + ["optim.lr=-1", f"hydra.run.dir={sweep / 'bad'}"])
    runs = cnnlab.load_runs(sweep)
    assert [r["name"] for r in runs] == ["bad", "optim.lr=0.001", "optim.lr=0.01"]
    bad, slow, fast = runs
    assert bad["status"] == "failed" and bad["history"] == [] and "optim.lr" in bad["results"]["error"]
    assert fast["status"] == "completed" and fast["overrides"]["optim.lr"] == "0.01"
    assert fast["config"]["optim"]["lr"] == 0.01 and len(fast["history"]) == 1
    assert "history" not in fast["results"] and fast["results"]["test_acc"] > 0
    frame = cnnlab.runs_frame(sweep)
    assert list(frame["name"]) == ["bad", "optim.lr=0.001", "optim.lr=0.01"]
    assert frame["optim.lr"].tolist() == [-1.0, 0.001, 0.01] and frame["optim.lr"].dtype.kind == "f"
    assert frame.loc[2, "test_acc"] == fast["results"]["test_acc"]
    assert frame.loc[1, "model.name"] == "lecture_cnn" and frame.loc[0, "status"] == "failed"
    with pytest.raises(ConfigError):
        cnnlab.load_runs(tmp_path / "nowhere")
