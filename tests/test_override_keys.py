"""A misspelt setting on the command line is refused before Hydra starts, with the likely key."""
import pytest

from cnnlab.override_keys import unknown_key_message

GROUPS = ["dataset", "experiment", "hparams_search", "model", "optim", "sched", "trainer", "variant"]


@pytest.mark.parametrize("args", [
    ["model=resnet18", "optim.lr=0.1", "dataset.augment.crop=4", "seed=3"],
    ["optim.betas.0=0.8"],  # an element of a list setting
    ["-m", "optim=sgd,adam", "model.dropout=0,0.5"],
    ["+extra=1", "~model.dense", "model@net=mlp", "hydra.run.dir=out", "hydra/launcher=submitit_slurm",
     "--cfg", "job"],
])
def test_real_settings_and_hydras_own_overrides_pass(args):
    assert unknown_key_message(args, GROUPS) is None


@pytest.mark.parametrize("arg, suggestion", [
    ("train.epochs=1", "trainer.max_epochs"),
    ("epochs=3", "trainer.max_epochs"),
    ("lr=0.1", "optim.lr"),
    ("batch_size=64", "dataset.batch_size"),
    ("dataset.augmnt.flip=true", "dataset.augment.flip"),
    ("modle=mlp", "model"),
])
def test_a_misspelt_key_is_named_with_the_likely_setting(arg, suggestion):
    message = unknown_key_message(["model=mlp", arg], GROUPS)
    key = arg.split("=")[0]
    assert f"no setting '{key}'" in message and f"Did you mean {suggestion}" in message


def test_without_a_close_match_the_sections_settings_are_listed():
    message = unknown_key_message(["optim.learning_rate=0.1"], GROUPS)
    assert "The settings under optim are: name, lr," in message
