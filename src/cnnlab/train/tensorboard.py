"""What `tensorboard --logdir outputs` opens on: the learning curves first, training and validation on one chart.

A run folder holds its event file with the `train/*`, `val/*`, `lr`, `perf/*` tags as ever, and, as
Keras's TensorBoard callback does, two sub-runs `train/` and `validation/` that log the same epoch
metrics under one tag each (`curves/loss`, `curves/accuracy`): TensorBoard draws every run that has a
tag on that tag's chart, so each job's training and validation curves share a chart. The `curves`
group sorts before `data` (the first batch) and `diagnostics` (the test-set figures), and Time Series
expands its first two groups, so the page opens on the curves with the pictures below. A custom-scalars
layout of the same two charts is written too (the Custom Scalars dashboard).

HParams: one session per run with its settings as typed values (numbers as numbers), named by their
config keys (`optim.lr`, `model.dropout`). A job of a sweep also writes the sweep's experiment: the
swept keys only, marked as differing, so the dashboard lists them first and hides what every job
shares. A single run writes no experiment, and TensorBoard infers one from all the runs it finds.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from torch.utils.tensorboard import SummaryWriter

SUB_RUNS = {"train/loss": ("train", "curves/loss"), "train/acc": ("train", "curves/accuracy"),
            "val/loss": ("validation", "curves/loss"), "val/acc": ("validation", "curves/accuracy")}
LAYOUT = {"curves": {"loss": ["Multiline", [r"^train/loss$", r"^val/loss$"]],
                     "accuracy": ["Multiline", [r"^train/acc$", r"^val/acc$"]]}}
# Shown for every run, besides the keys of its overrides
CORE_KEYS = ("model", "dataset", "optim", "optim.lr", "optim.weight_decay", "sched", "model.dropout",
             "model.batch_norm", "dataset.batch_size", "seed")
METRICS = ("test_acc", "best_val_acc", "test_loss")


class RunWriter(SummaryWriter):
    """A SummaryWriter whose epoch metrics also go to the `train/` and `validation/` sub-runs."""

    def __init__(self, run_dir: Path):
        super().__init__(log_dir=str(run_dir))
        self._run_dir = Path(run_dir)
        self._subs: Dict[str, SummaryWriter] = {}
        self.add_custom_scalars(LAYOUT)

    def add_scalar(self, tag, scalar_value, global_step=None, *args, **kwargs):
        super().add_scalar(tag, scalar_value, global_step, *args, **kwargs)
        if tag in SUB_RUNS:
            sub, name = SUB_RUNS[tag]
            if sub not in self._subs:
                self._subs[sub] = SummaryWriter(log_dir=str(self._run_dir / sub))
            self._subs[sub].add_scalar(name, scalar_value, global_step)

    def flush(self):
        super().flush()
        for sub in self._subs.values():
            sub.flush()

    def close(self):
        for sub in self._subs.values():
            sub.close()
        super().close()


def log_hparams(writer, cfg, overrides: List[str], results: dict) -> None:
    """One row per run in TensorBoard's HParams dashboard (and the sweep's columns, in a sweep)."""
    file_writer = getattr(writer, "file_writer", None)
    if file_writer is None or not hasattr(file_writer, "add_summary"):
        return  # a writer that writes nothing (other ranks, fast_dev_run)
    hparams = run_hparams(cfg, overrides)
    metrics = {f"hparam/{k}": results[k] for k in METRICS if results.get(k) is not None}
    swept = _swept_keys()
    summaries = [_session_start(hparams), _session_end()]
    if swept:
        summaries.insert(0, _experiment(hparams, swept, list(metrics)))
    for summary in summaries:
        file_writer.add_summary(summary)
    for key, value in metrics.items():
        writer.add_scalar(key, value)


def run_hparams(cfg, overrides: List[str]) -> Dict[str, Any]:
    """Config key -> this run's value (bool, number or string): the core keys, then its overrides."""
    import dataclasses

    config = dataclasses.asdict(cfg)
    keys = list(CORE_KEYS)
    for item in overrides:
        key, sep, _ = item.partition("=")
        key = key.lstrip("+~")
        if sep and not key.startswith("hydra.") and key not in keys:
            keys.append(key)
    given = {o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in overrides}
    return {key: _typed(_lookup(config, key, given.get(key))) for key in keys}


def _lookup(config: dict, key: str, given: Optional[str]) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _parse(given)  # a preset group (variant=, experiment=): its name as typed
        node = node[part]
    if isinstance(node, dict):  # a group choice such as optim=: every cnnlab group has a name
        return node.get("name", given)
    return node


def _parse(text: Optional[str]) -> Any:
    if text is None:
        return None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _typed(value: Any):
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    if value is None:
        return "null"
    return str(value)


def _swept_keys() -> List[str]:
    """The keys this job's sweep varies; none outside a sweep."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return []
        params = hydra_cfg.sweeper.get("params")
    except (ValueError, ImportError, AttributeError):
        return []
    from cnnlab.naming import swept_keys

    return sorted(swept_keys(sys.argv[1:], params))


def _summary(tag: str, **plugin_data):
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **plugin_data)
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                                  content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag=tag, metadata=smd)])


def _session_start(hparams: Dict[str, Any]):
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import SessionStartInfo

    start = SessionStartInfo()
    for key, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = str(value)
    return _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)


def _session_end():
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import SessionEndInfo

    return _summary(metadata.SESSION_END_INFO_TAG, session_end_info=SessionEndInfo(status=api_pb2.STATUS_SUCCESS))


def _experiment(hparams: Dict[str, Any], swept: List[str], metrics: List[str]):
    """The sweep's columns: its swept keys, typed by this job's values, all marked as differing."""
    from tensorboard.plugins.hparams import api_pb2, metadata

    infos = []
    for key in swept:
        value = hparams.get(key)
        if isinstance(value, bool):
            kind = api_pb2.DATA_TYPE_BOOL
        elif isinstance(value, (int, float)):
            kind = api_pb2.DATA_TYPE_FLOAT64
        else:
            kind = api_pb2.DATA_TYPE_STRING
        infos.append(api_pb2.HParamInfo(name=key, type=kind, differs=True))
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=tag.split("/", 1)[1])
                    for tag in metrics]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos)
    return _summary(metadata.EXPERIMENT_TAG, experiment=experiment)
