"""One monitored metric: best.pt, best_epoch, early stopping, the closing line and the objective agree."""
import math

import pytest
import torch

from cnnlab.config import default_data_dir
from cnnlab.data import build_data
from cnnlab.errors import ConfigError
from cnnlab.models import build_model
from cnnlab.results import objective_value
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.evaluate import evaluate
from cnnlab.train.objective import Objective
from cnnlab.train.runtime import use_channels_last
from conftest import CONF, compose_config

ONE_THREAD = ["trainer.num_threads=1"]
# The default recipe, 10 epochs: val/acc peaks (epoch 7) before val/loss bottoms out (epoch 9)
DEFAULT = ONE_THREAD + ["trainer.max_epochs=10"]


def _first_best(history, monitor):
    key = (lambda r: (r[monitor], r["epoch"])) if monitor == "val/loss" else (lambda r: (-r[monitor], r["epoch"]))
    return min(history, key=key)["epoch"]


def _evaluate_weights(overrides, weights):
    """Loss and accuracy of `weights` on the run's own validation and test images."""
    cfg = compose_config(overrides)
    device = torch.device("cpu")
    channels_last = use_channels_last(cfg.trainer.channels_last, cfg.model.family)
    data = build_data(cfg.dataset, default_data_dir(), device, torch.Generator().manual_seed(cfg.seed), channels_last)
    model = build_model(cfg.model, data.shape, data.num_classes)
    model.load_state_dict(weights)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    objective = Objective(cfg.loss, model)
    top5 = data.num_classes > 5
    return (evaluate(model, data.val, objective, device, None, top5),
            evaluate(model, data.test, objective, device, None, top5))


@pytest.mark.parametrize("monitor", ["val/loss", "val/acc"])
def test_best_pt_best_epoch_and_best_metrics_follow_the_monitor(train_run, monitor, cnnlab_log):
    overrides = DEFAULT + [f"trainer.monitor={monitor}"]
    results, run_dir = train_run(overrides)
    history = results["history"]
    assert results["monitor"] == monitor
    assert results["best_epoch"] == _first_best(history, monitor)
    row = history[results["best_epoch"] - 1]
    assert results["best_val_loss"] == row["val/loss"] and results["best_val_acc"] == row["val/acc"]
    assert results["max_val_acc"] == max(r["val/acc"] for r in history)
    assert results["min_val_loss"] == min(r["val/loss"] for r in history)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["fit"]["epoch"] == best["tracker"]["best_epoch"] == results["best_epoch"]
    val, _ = _evaluate_weights(overrides, best["model"])
    assert val["loss"] == pytest.approx(results["best_val_loss"], rel=1e-5)
    assert val["acc"] == results["best_val_acc"]
    closing = cnnlab_log.records[-1].getMessage()
    shown = f"{row['val/loss']:.4f}" if monitor == "val/loss" else f"{row['val/acc']:.2%}"
    assert f"best {monitor} {shown} at epoch {results['best_epoch']}" in closing
    assert objective_value(results) == (results["best_val_loss"] if monitor == "val/loss" else results["best_val_acc"])


def test_the_two_monitors_pick_different_epochs_of_the_same_run(train_run, tmp_path):
    by_loss, _ = train_run(DEFAULT, tmp_path / "loss")  # trainer.monitor defaults to val/loss
    by_acc, _ = train_run(DEFAULT + ["trainer.monitor=val/acc"], tmp_path / "acc")
    curves = [[(r["val/loss"], r["val/acc"]) for r in run["history"]] for run in (by_loss, by_acc)]
    assert by_loss["monitor"] == "val/loss" and curves[0] == curves[1]
    assert by_loss["best_epoch"] != by_acc["best_epoch"]  # otherwise this test shows nothing
    assert by_loss["max_val_acc"] == by_acc["max_val_acc"] == by_acc["best_val_acc"]
    assert by_loss["best_val_acc"] <= by_loss["max_val_acc"]


@pytest.mark.parametrize("monitor", ["val/loss", "val/acc"])
@pytest.mark.parametrize("stops", [True, False], ids=["stops-early", "reaches-max-epochs"])
def test_early_stopping_restores_the_monitored_best_weights(train_run, monitor, stops):
    # SGD at lr 0.5 stops improving quickly; patience 8 never runs out in 10 epochs of the default recipe
    overrides = (ONE_THREAD + ["trainer.max_epochs=30", "trainer.early_stopping.patience=1", "optim=sgd", "optim.lr=0.5"]
                 if stops else DEFAULT + ["trainer.early_stopping.patience=8"])
    overrides += [f"trainer.monitor={monitor}"]
    results, run_dir = train_run(overrides)
    assert results["stopped_early"] is stops and (results["epochs"] < 30 if stops else results["epochs"] == 10)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["fit"]["epoch"] == results["best_epoch"] == _first_best(results["history"], monitor)
    val, test = _evaluate_weights(overrides, best["model"])
    assert val["loss"] == pytest.approx(results["best_val_loss"], rel=1e-5)
    assert val["acc"] == results["best_val_acc"]
    # the test figures come from the final model: best.pt's weights, restored
    assert test["loss"] == pytest.approx(results["test_loss"], rel=1e-5) and test["acc"] == results["test_acc"]


def test_early_stopping_monitor_is_an_alias_of_trainer_monitor():
    assert compose_config([]).trainer.monitor == "val/loss"
    assert compose_config(["trainer.early_stopping.monitor=val/acc"]).trainer.monitor == "val/acc"
    assert compose_config(["trainer.monitor=val/acc", "trainer.early_stopping.monitor=val/acc"]).trainer.monitor \
        == "val/acc"
    with pytest.raises(ConfigError, match="trainer.monitor.*trainer.early_stopping.monitor"):
        compose_config(["trainer.monitor=val/acc", "trainer.early_stopping.monitor=val/loss"])
    with pytest.raises(ConfigError, match="trainer.monitor"):
        compose_config(["trainer.monitor=val/top5_acc"])
    with pytest.raises(ConfigError, match="trainer.early_stopping.monitor"):
        compose_config(["trainer.early_stopping.monitor=loss"])


def test_objective_value_is_the_monitored_metric_at_the_best_epoch():
    results = {"monitor": "val/loss", "best_val_loss": 0.07, "best_val_acc": 0.97, "max_val_acc": 0.98}
    assert objective_value(results) == 0.07
    assert objective_value({**results, "monitor": "val/acc"}) == 0.97
    assert math.isnan(objective_value({"monitor": "val/acc", "best_val_acc": None, "best_val_loss": None}))


def test_the_optuna_preset_maximises_val_acc_and_monitors_it():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.trainer.monitor == "val/acc" and cfg.hydra.sweeper.direction == "maximize"
