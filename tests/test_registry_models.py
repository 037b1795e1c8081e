"""Every model family registers its typed config: each key acts in the chosen family or is refused.

Parametrized over the registry (cnnlab.registry), so a new family or preset is tested once registered.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab import registry
from cnnlab.errors import ConfigError
from cnnlab.models import build_model
from cnnlab.models.schema import ModelCommon, model_config, saved_model_config
from cnnlab.override_keys import family_key_message, unknown_key_message
from conftest import CONF, compose_config, run_cli

FAMILIES = registry.names("model")
PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())


def preset_values(name: str) -> dict:
    values = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{name}.yaml"))
    values.pop("defaults", None)
    return values


def params(cfg: ModelCommon, shape: tuple) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init
        model = build_model(cfg, shape, 2 if cfg.binary_head else 10)
    return sum(p.numel() for p in model.parameters())


def family_presets(family: str) -> list[str]:
    return [p for p in PRESETS if preset_values(p)["family"] == family]


def foreign_key(family: str) -> str:
    """A key of another family that this one does not have."""
    own = registry.get("model", family).keys()
    return next(k for k in registry.all_keys("model") if k not in own)


def test_the_registry_holds_the_six_families():
    assert set(FAMILIES) == {"mlp", "cnn", "vgg", "alexnet", "inception", "resnet"}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_presets_that_name_its_schema(family):
    assert family_presets(family), f"no preset in conf/model/ for {family}"
    for name in family_presets(family):
        defaults = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{name}.yaml"))["defaults"]
        assert defaults[0] == f"/schema/model/{family}@_here_", name


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_composes_to_exactly_its_familys_keys(name):
    cfg = compose_config([f"model={name}"]).model
    entry = registry.get("model", cfg.family)
    assert type(cfg) is entry.config and cfg.name == name
    assert list(dataclasses.asdict(cfg)) == entry.keys()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_refuses_a_key_of_another_family(family):
    key = foreign_key(family)
    name = family_presets(family)[0]
    owner = registry.get("model", registry.owners("model", key)[0]).config
    with pytest.raises(ConfigError) as info:
        model_config({**preset_values(name), key: getattr(owner(), key)})  # a value fit for its owner
    message = str(info.value)
    assert f"model.{key} does nothing in model={name}" in message
    assert "The keys of " + family + " are: " + ", ".join(registry.get("model", family).keys()) in message
    assert "\n" not in message
    # before Hydra, from the command line ...
    assert family_key_message([f"model={name}", f"model.{key}=1"], CONF).startswith(f"model.{key} does nothing")
    # ... and Hydra itself, where the config is composed some other way
    with pytest.raises(Exception, match=f"Could not override 'model.{key}'"):
        compose_config([f"model={name}", f"model.{key}=1"])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_familys_own_keys_pass_the_command_line_checks(family):
    name = family_presets(family)[0]
    args = [f"model={name}"] + [f"model.{k}=1" for k in registry.get("model", family).keys()]
    assert unknown_key_message(args, GROUPS) is None and family_key_message(args, CONF) is None


@pytest.mark.parametrize("args, family", [
    (["model=resnet18", "model.batch_norm=false", "model.inception=naive"], "resnet"),
    (["model=alexnet", "model.batch_norm=false"], "alexnet"),
    (["model=mlp", "model.pool=[false]"], "mlp"),
    (["-m", "model=resnet18,mlp", "model.width=16"], "mlp"),  # every model of a sweep
    (["experiment=depth", "model.hidden=[10]"], "resnet"),  # the experiment's model
    (["model.depth=11"], "cnn"),  # the default lecture_cnn
])
def test_the_issues_settings_that_did_nothing_are_refused_before_hydra(args, family):
    message = family_key_message(args, CONF)
    assert message and f"The keys of {family} are:" in message and "nothing was run" in message


def test_a_misspelt_family_key_is_still_suggested():
    assert "Did you mean model.width" in unknown_key_message(["model=resnet18", "model.widht=8"], GROUPS)


# ---------------------------------------------------------------- keys that act now
def test_resnet_and_its_plain_twin_without_batch_norm():
    for name in ("resnet18", "plain18", "resnet50"):
        with_bn = model_config(preset_values(name))
        without = model_config({**preset_values(name), "batch_norm": False, "width": 8})
        assert with_bn.batch_norm is True
        model = build_model(without, (3, 32, 32), 10)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), name
        assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d)), name
        assert params(without, (3, 32, 32)) != params(model_config({**preset_values(name), "width": 8}), (3, 32, 32))
    torch.manual_seed(0)
    model = build_model(model_config({**preset_values("plain18"), "batch_norm": False, "width": 8}), (1, 8, 8), 10)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_vgg_batch_norm_on_and_off():
    off, on = (model_config({**preset_values("vgg11"), "batch_norm": flag, "width": 8}) for flag in (False, True))
    assert params(on, (3, 32, 32)) > params(off, (3, 32, 32))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in build_model(on, (3, 32, 32), 10).modules())


def test_alexnet_width_scales_every_layer():
    full, quarter = (model_config({**preset_values("alexnet"), "width": w}) for w in (64, 16))
    big, small = build_model(full, (3, 32, 32), 10), build_model(quarter, (3, 32, 32), 10)
    assert set(big.state_dict()) == set(small.state_dict())  # the same layers, narrower
    assert small.features[0].out_channels == 16 and small.classifier[1].out_features == 1024
    assert params(full, (3, 32, 32)) / 20 < params(quarter, (3, 32, 32)) < params(full, (3, 32, 32)) / 12
    out = small(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("change, key", [
    ({"family": "mlp", "hidden": [0]}, "model.hidden"),
    ({"family": "mlp", "hidden": [100, 0, 100]}, "model.hidden"),
    ({"family": "cnn", "blocks": [[32, 0]]}, "model.blocks"),
    ({"family": "cnn", "blocks": [[32], []]}, "model.blocks"),
    ({"family": "cnn", "dense": [0]}, "model.dense"),
    ({"family": "cnn", "blocks": [[8], [8]], "pool": [True]}, "model.pool"),
    ({"family": "resnet", "width": 0}, "model.width"),
    ({"family": "vgg", "width": 0}, "model.width"),
    ({"family": "alexnet", "width": 0}, "model.width"),
    ({"family": "inception", "width": 0}, "model.width"),
    ({"family": "resnet", "depth": 20}, "model.depth"),
    ({"family": "vgg", "depth": 18}, "model.depth"),
    ({"family": "zoo"}, "model.family"),
])
def test_zero_width_layers_and_impossible_shapes_are_refused(change, key):
    with pytest.raises(ConfigError, match=f"{key}=.* is not allowed: {key} must be"):
        model_config(change)


# ---------------------------------------------------------------- parameter counts as before the registry
# Every preset on three input shapes (and the experiments' narrow variants), counted with the code of
# a15d12b (one flat ModelConfig): the registry changes which keys are accepted, never a network.
PARAMS = {
    "alexnet@1x8x8": 23_467_722,
    "alexnet@3x32x32": 23_468_874,
    "alexnet@3x128x128": 57_044_810,
    "cnn5x5@1x8x8": 2_579_210,
    "cnn5x5@3x32x32": 8_873_866,
    "cnn5x5@3x128x128": 222_783_370,
    "fast_cnn@1x8x8": 24_170,
    "fast_cnn@3x32x32": 34_058,
    "fast_cnn@3x128x128": 187_658,
    "googlenet@1x8x8": 5_982_250,
    "googlenet@3x32x32": 5_983_402,
    "googlenet@3x128x128": 5_991_082,
    "keras_binary_cnn@1x8x8": 306_817,
    "keras_binary_cnn@3x32x32": 307_393,
    "keras_binary_cnn@3x128x128": 2_601_153,
    "keras_cnn@1x8x8": 60_554,
    "keras_cnn@3x32x32": 122_570,
    "keras_cnn@3x128x128": 3_268_298,
    "lecture_cnn@1x8x8": 53_002,
    "lecture_cnn@3x32x32": 1_626_442,
    "lecture_cnn@3x128x128": 31_510_858,
    "mlp@1x8x8": 674_250,
    "mlp@3x32x32": 3_032_522,
    "mlp@3x128x128": 39_159_242,
    "mlp5x100@1x8x8": 47_910,
    "mlp5x100@3x32x32": 348_710,
    "mlp5x100@3x128x128": 4_956_710,
    "plain18@1x8x8": 10_998_986,
    "plain18@3x32x32": 11_000_138,
    "plain18@3x128x128": 11_007_818,
    "plain34@1x8x8": 21_107_146,
    "plain34@3x32x32": 21_108_298,
    "plain34@3x128x128": 21_115_978,
    "report_cnn@1x8x8": 126_986,
    "report_cnn@3x32x32": 176_714,
    "report_cnn@3x128x128": 3_322_442,
    "report_cnn_dropout@1x8x8": 110_474,
    "report_cnn_dropout@3x32x32": 160_202,
    "report_cnn_dropout@3x128x128": 3_305_930,
    # report_cnn plus batch norm after each conv block and dense layer: 2 x (32+64+128+128+128) more
    "report_cnn_bn@1x8x8": 127_946,
    "report_cnn_bn@3x32x32": 177_674,
    "report_cnn_bn@3x128x128": 3_323_402,
    "resnet18@1x8x8": 11_172_810,
    "resnet18@3x32x32": 11_173_962,
    "resnet18@3x128x128": 11_181_642,
    "resnet34@1x8x8": 21_280_970,
    "resnet34@3x32x32": 21_282_122,
    "resnet34@3x128x128": 21_289_802,
    "resnet50@1x8x8": 23_519_690,
    "resnet50@3x32x32": 23_520_842,
    "resnet50@3x128x128": 23_528_522,
    "vgg11@1x8x8": 9_749_770,
    "vgg11@3x32x32": 9_750_922,
    "vgg11@3x128x128": 128_807_306,
    "vgg11_bn@1x8x8": 9_755_274,
    "vgg11_bn@3x32x32": 9_756_426,
    "vgg11_bn@3x128x128": 128_812_810,
    "vgg16@1x8x8": 15_243_978,
    "vgg16@3x32x32": 15_245_130,
    "vgg16@3x128x128": 134_301_514,
    "vgg16_finetune@1x8x8": 14_718_666,
    "vgg16_finetune@3x32x32": 14_719_818,
    "vgg16_finetune@3x128x128": 14_796_618,
    "vgg11_bn,width=16@1x8x8": 612_522,
    "vgg11_bn,width=16@3x32x32": 612_810,
    "vgg11_bn,width=16@3x128x128": 8_061_898,
    "googlenet,width=16@1x8x8": 378_658,
    "googlenet,width=16@3x32x32": 378_946,
    "googlenet,width=16@3x128x128": 380_866,
    "resnet18,width=16@1x8x8": 701_178,
    "resnet18,width=16@3x32x32": 701_466,
    "resnet18,width=16@3x128x128": 703_386,
    "resnet18,width=8@1x8x8": 176_258,
    "resnet18,width=8@3x32x32": 176_402,
    "resnet18,width=8@3x128x128": 177_362,
    "plain34,width=8@1x8x8": 332_098,
    "plain34,width=8@3x32x32": 332_242,
    "plain34,width=8@3x128x128": 333_202,
}


@pytest.mark.parametrize("case", sorted(PARAMS))
def test_every_presets_parameter_count_stays_as_it_was(case):
    spec, shape = case.split("@")
    name, *changes = spec.split(",")
    values = {**preset_values(name), **{k: int(v) for k, v in (c.split("=") for c in changes)}}
    assert params(model_config(values), tuple(int(d) for d in shape.split("x"))) == PARAMS[case]


def test_every_preset_is_counted():
    assert {case.split("@")[0] for case in PARAMS} >= set(PRESETS)


def test_architectures_experiment_narrows_only_its_deep_models():
    widths = {}
    for name in ("mlp", "lecture_cnn", "vgg11_bn", "googlenet", "resnet18"):
        model = compose_config(["experiment=architectures", f"model={name}"]).model
        widths[name] = getattr(model, "width", None)
    assert widths == {"mlp": None, "lecture_cnn": None, "vgg11_bn": 8, "googlenet": 8, "resnet18": 8}


# ---------------------------------------------------------------- checkpoints
# asdict of the one flat ModelConfig before the registry, as older checkpoints hold it
FLAT = {"name": "resnet18", "family": "resnet", "activation": "relu", "init": "default", "init_std": 0.01,
        "dropout": 0.0, "batch_norm": False, "hidden": [], "blocks": [], "kernel_size": 3, "padding": "valid",
        "pool": True, "dense": [], "binary_head": False, "depth": 18, "residual": True, "width": 8, "stem": "auto",
        "head": "full", "inception": "reduced", "aux_heads": False, "pretrained": None}


def test_an_older_checkpoints_flat_config_rebuilds_the_network_it_trained():
    resnet = saved_model_config(FLAT)  # its batch_norm=False did nothing then: ResNets had batch norm
    assert type(resnet).__name__ == "ResNetConfig" and resnet.batch_norm is True and resnet.width == 8
    alexnet = saved_model_config({**FLAT, "name": "alexnet", "family": "alexnet", "width": 16})
    assert alexnet.width == 64  # width did nothing in AlexNet then
    vgg = saved_model_config({**FLAT, "name": "vgg11_bn", "family": "vgg", "depth": 11, "batch_norm": True})
    assert vgg.batch_norm is True and vgg.width == 8


@pytest.mark.parametrize("name", PRESETS)
def test_a_checkpoints_model_config_round_trips(name):
    cfg = model_config(preset_values(name))
    saved = dataclasses.asdict(cfg)
    assert {"name", "family", "pretrained"} <= set(saved)  # what predict and finetune read
    assert saved_model_config(saved) == cfg


def test_the_old_flat_constructor_gives_the_familys_config():
    from cnnlab.config import ModelConfig

    cfg = ModelConfig(name="resnet18", family="resnet", depth=18, width=8)
    assert type(cfg) is registry.get("model", "resnet").config and cfg.width == 8
    with pytest.raises(TypeError, match="width"):
        ModelConfig(name="mlp", family="mlp", width=8)


# ---------------------------------------------------------------- the command line
def test_the_command_refuses_a_key_of_another_family_with_exit_2(tmp_path):
    proc = run_cli(["model=resnet18", "model.inception=naive", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.inception does nothing in model=resnet18 (the resnet family)" in proc.stderr
    assert "depth, residual, batch_norm, width, stem" in proc.stderr and not (tmp_path / "run").exists()


def test_help_lists_every_family_with_its_keys(tmp_path):
    out = run_cli(["--help"], cwd=tmp_path).stdout
    for family in FAMILIES:
        entry = registry.get("model", family)
        own = [k for k in entry.keys() if k not in [f.name for f in dataclasses.fields(ModelCommon)]]
        assert f"{family}: " in out and ", ".join(own) in out, family
        assert all(p in out for p in family_presets(family))

