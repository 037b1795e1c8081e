"""TensorBoard opens on the curves: train/ and validation/ sub-runs on shared charts, and HParams columns
that are the swept keys, marked as differing, with numbers as numbers."""
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from tests.conftest import FAST, run_cli

SMALL = FAST + ["trainer.max_epochs=2", "dataset.train_size=300", "trainer.num_threads=1"]


def _hparams_data(run_dir: Path) -> dict:
    """tag -> HParamsPluginData of the hparams summaries in the run's own event file."""
    found = {}
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    found[value.tag] = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    return found


def test_training_and_validation_share_each_chart_as_keras_sub_runs(train_run):
    results, run_dir = train_run(SMALL)
    root = EventAccumulator(str(run_dir)).Reload()
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr"} <= set(root.Tags()["scalars"])  # kept
    assert "custom_scalars__config__" in root.Tags()["tensors"]  # the Custom Scalars dashboard's layout
    for sub, prefix in (("train", "train"), ("validation", "val")):
        events = EventAccumulator(str(run_dir / sub)).Reload()
        assert sorted(events.Tags()["scalars"]) == ["curves/accuracy", "curves/loss"]
        for tag, key in (("curves/loss", "loss"), ("curves/accuracy", "acc")):
            points = [(e.step, e.value) for e in events.Scalars(tag)]
            expected = [(row["epoch"], row[f"{prefix}/{key}"]) for row in results["history"]]
            assert [s for s, _ in points] == [s for s, _ in expected]
            assert all(abs(a - b) < 1e-6 for (_, a), (_, b) in zip(points, expected))


def test_a_single_run_logs_typed_hparams_and_lets_tensorboard_infer_the_columns(train_run):
    _, run_dir = train_run(SMALL + ["optim=sgd", "optim.lr=0.05", "model.batch_norm=true"])
    data = _hparams_data(run_dir)
    assert metadata.EXPERIMENT_TAG not in data  # no sweep: TensorBoard works out what differs across runs
    hparams = data[metadata.SESSION_START_INFO_TAG].session_start_info.hparams
    assert hparams["optim"].string_value == "sgd" and hparams["optim.lr"].number_value == 0.05
    assert hparams["model.batch_norm"].bool_value is True and hparams["seed"].number_value == 0
    assert hparams["dataset.batch_size"].number_value == 64 and hparams["model"].string_value == "lecture_cnn"
    assert data[metadata.SESSION_END_INFO_TAG].session_end_info.status == api_pb2.STATUS_SUCCESS


def test_a_sweep_lists_its_swept_keys_only_marked_as_differing(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli(["-m", "optim=sgd,adam", "optim.lr=0.01,0.02"] + SMALL[:-3] + ["trainer.max_epochs=1",
                   "dataset.train_size=200", "trainer.num_threads=1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4
    values = set()
    for job in jobs:
        data = _hparams_data(job)
        infos = data[metadata.EXPERIMENT_TAG].experiment.hparam_infos
        assert [(i.name, i.type, i.differs) for i in infos] == [("optim", api_pb2.DATA_TYPE_STRING, True),
                                                                ("optim.lr", api_pb2.DATA_TYPE_FLOAT64, True)]
        metrics = [m.name.tag for m in data[metadata.EXPERIMENT_TAG].experiment.metric_infos]
        assert metrics == ["hparam/test_acc", "hparam/best_val_acc", "hparam/test_loss"]
        start = data[metadata.SESSION_START_INFO_TAG].session_start_info.hparams
        values.add((start["optim"].string_value, start["optim.lr"].number_value))
        assert (job / "train").is_dir() and (job / "validation").is_dir()
    assert values == {("sgd", 0.01), ("sgd", 0.02), ("adam", 0.01), ("adam", 0.02)}
