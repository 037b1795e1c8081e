"""Every optimizer and schedule registers its typed config: each key acts in the chosen one or is refused.

Parametrized over the registry, as the model families are (tests/test_registry_models.py).
"""
from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from cnnlab import registry
from cnnlab.config import OptimConfig, SchedConfig
from cnnlab.errors import ConfigError
from cnnlab.override_keys import family_key_message
from conftest import CONF, compose_config

ENTRIES = [(kind, name) for kind in ("optim", "sched") for name in registry.names(kind)]


def presets(group: str, name: str) -> list[str]:
    return [p.stem for p in sorted((CONF / group).glob("*.yaml")) if OmegaConf.load(p).get("name") == name]


def preset_values(group: str, preset: str) -> dict:
    values = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{preset}.yaml"))
    values.pop("defaults", None)
    return values


def test_the_registry_holds_the_interfaces_names():
    assert registry.names("optim") == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
    assert registry.names("sched") == ("none", "step", "cosine", "onecycle", "plateau")


@pytest.mark.parametrize("kind, name", ENTRIES)
def test_each_has_a_preset_that_composes_to_exactly_its_keys(kind, name):
    (preset,) = presets(kind, name)
    defaults = OmegaConf.to_container(OmegaConf.load(CONF / kind / f"{preset}.yaml"))["defaults"]
    assert defaults[0] == f"/schema/{kind}/{name}@_here_"
    cfg = getattr(compose_config([f"{kind}={preset}"]), kind)
    entry = registry.get(kind, name)
    assert type(cfg) is entry.config and list(dataclasses.asdict(cfg)) == entry.keys()


@pytest.mark.parametrize("kind, name", ENTRIES)
def test_each_refuses_a_key_of_another(kind, name):
    own = registry.get(kind, name).keys()
    key = next(k for k in registry.all_keys(kind) if k not in own)
    owner = registry.get(kind, registry.owners(kind, key)[0]).config
    (preset,) = presets(kind, name)
    with pytest.raises(ConfigError) as info:
        registry.make_config(kind, {**preset_values(kind, preset), key: getattr(owner(), key)})
    assert f"{kind}.{key} does nothing in {kind}={name}" in str(info.value)
    assert f"The keys of {name} are: {', '.join(own)}." in str(info.value)
    message = family_key_message([f"{kind}={preset}", f"{kind}.{key}=1"], CONF)
    assert message and message.startswith(f"{kind}.{key} does nothing")
    with pytest.raises(Exception, match=f"Could not override '{kind}.{key}'"):
        compose_config([f"{kind}={preset}", f"{kind}.{key}=1"])


@pytest.mark.parametrize("args, refused", [
    (["optim=adam", "optim.momentum=0.9"], "optim.momentum does nothing in optim=adam"),
    (["optim.momentum=0.9"], "optim.momentum does nothing in optim=adam"),  # the default optimizer
    (["-m", "optim=sgd,momentum,adam", "optim.momentum=0.5"], "in optim=adam"),  # any job of a sweep
    (["experiment=optimizers", "optim.betas=[0.9,0.99]"], "optim.betas does nothing in optim=sgd"),
    (["sched=step", "sched.min_lr=0.001"], "sched.min_lr does nothing in sched=step"),
    (["sched.patience=2"], "sched.patience does nothing in sched=none"),
])
def test_settings_that_would_do_nothing_are_refused_before_hydra(args, refused):
    assert refused in family_key_message(args, CONF)


@pytest.mark.parametrize("args", [
    ["optim=momentum", "optim.momentum=0.5", "sched=plateau", "sched.patience=1", "sched.min_lr=0.01"],
    ["experiment=fast", "sched.pct_start=0.3", "optim.betas=[0.8,0.99]"],
    ["-m", "optim=adam,adamw", "optim.betas=[0.8,0.99]", "optim.lr=0.01,0.001"],
])
def test_settings_that_act_pass(args):
    assert family_key_message(args, CONF) is None


@pytest.mark.parametrize("override, key", [
    (["optim=sgd", "optim.momentum=1.5"], "optim.momentum"),
    (["optim=rmsprop", "optim.alpha=1.0"], "optim.alpha"),
    (["optim=adam", "optim.betas=[0.9]"], "optim.betas"),
    (["optim=adagrad", "optim.eps=0"], "optim.eps"),
    (["sched=onecycle", "sched.pct_start=1.5"], "sched.pct_start"),
    (["sched=plateau", "sched.factor=2"], "sched.factor"),
    (["sched=step", "sched.step_size=0"], "sched.step_size"),
    (["sched=cosine", "sched.warmup_epochs=-1"], "sched.warmup_epochs"),
])
def test_out_of_range_values_of_an_entrys_own_keys_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"{key}=.* is not allowed: {key} must be"):
        compose_config(override)


def test_the_old_flat_constructors_give_the_entrys_config():
    assert type(OptimConfig(name="sgd", lr=0.1, momentum=0.5)) is registry.get("optim", "sgd").config
    assert type(SchedConfig(name="step", step_size=2)) is registry.get("sched", "step").config
    with pytest.raises(TypeError, match="momentum"):
        OptimConfig(name="adam", momentum=0.5)


@pytest.mark.parametrize("kind", sorted(registry.KINDS))
def test_readmes_table_lists_the_registrys_keys(kind):
    readme = (CONF.parent / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{kind}=` |"))
    assert row.endswith(f"| {registry.markdown_keys(kind)} |"), \
        f"README's {kind} row differs from the registry: paste cnnlab.registry.markdown_keys({kind!r})"


def test_help_lists_every_optimizer_and_schedule_with_its_keys(tmp_path):
    from conftest import run_cli

    out = run_cli(["--help"], cwd=tmp_path).stdout
    for kind in ("optim", "sched"):
        assert registry.describe(kind, CONF) in out


@pytest.mark.parametrize("kind", sorted(registry.KINDS))
def test_every_schema_loads_from_hydras_store_as_its_dataclass(kind):
    from hydra.core.config_store import ConfigStore

    for name, entry in registry.entries(kind).items():
        first = ConfigStore.instance().load(f"schema/{kind}/{name}.yaml")
        assert OmegaConf.to_yaml(first.node) == OmegaConf.to_yaml(OmegaConf.structured(entry.config))
        assert first.group == f"schema/{kind}" and first.name == f"{name}.yaml"
        assert OmegaConf.get_type(first.node) is entry.config
        first.node.name = "changed"  # each load is a copy: a compose cannot change the stored schema
        assert ConfigStore.instance().load(f"schema/{kind}/{name}.yaml").node.name != "changed"
