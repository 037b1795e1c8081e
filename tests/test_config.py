"""Every config group composes, and bad values fail with a message naming the key."""
import pytest

from cnnlab.errors import ConfigError
from conftest import CONF, compose_config

GROUPS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("dataset", "model", "optim", "sched")}


def test_interface_names_exist():
    assert set(GROUPS["dataset"]) >= {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn",
                                      "folder", "synthetic"}
    assert set(GROUPS["optim"]) >= {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}
    assert set(GROUPS["sched"]) >= {"none", "step", "cosine", "onecycle", "plateau"}


@pytest.mark.parametrize("group", ["dataset", "model", "optim", "sched"])
def test_every_option_composes_and_validates(group):
    for option in GROUPS[group]:
        extra = ["dataset.path=/tmp"] if (group, option) == ("dataset", "folder") else []
        cfg = compose_config([f"{group}={option}", *extra])
        assert getattr(cfg, group).name == option or group == "model"


def test_defaults_are_the_offline_digits_run():
    cfg = compose_config([])
    assert cfg.dataset.name == "digits" and cfg.model.name == "lecture_cnn" and cfg.optim.name == "adam"


@pytest.mark.parametrize("override, key", [
    ("optim.lr=-0.1", "optim.lr"),
    ("optim.lr=0", "optim.lr"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.dropout=-0.2", "model.dropout"),
    ("dataset.batch_size=0", "dataset.batch_size"),
    ("trainer.max_epochs=-1", "trainer.max_epochs"),
    ("dataset.val_split=1.5", "dataset.val_split"),
    ("model.activation=swish", "model.activation"),
    ("device=gpu", "device"),
    ("trainer.early_stopping.patience=-3", "trainer.early_stopping.patience"),
])
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        compose_config([override])
    assert key in str(info.value) and "must be" in str(info.value)


def test_unknown_key_added_with_plus_is_refused():
    with pytest.raises(ConfigError, match="unknown config key 'optim.foo'"):
        compose_config(["+optim.foo=1"])
