"""A frozen conv base's outputs computed once (train/frozen_features.py), with the numbers of the
run that goes through it every epoch."""
import logging

import pytest

from cnnlab.finetune import freeze
from cnnlab.models import build_model
from cnnlab.train.frozen_features import frozen_prefix_length
from conftest import compose_config

VGG = ["model=vgg11", "model.width=8", "trainer.max_epochs=3", "dataset.train_size=300", "trainer.num_threads=1",
       "finetune.freeze=features"]
STORED = "are computed once"


def _model(overrides, freeze_what=None, unfreeze=()):
    cfg = compose_config(overrides)
    model = build_model(cfg.model, (1, 8, 8), 10)
    freeze(model, freeze_what, list(unfreeze))
    return model


@pytest.mark.parametrize("unfreeze, length", [([], "all"), (["block5"], "block5"), (["block1"], 0)])
def test_the_stored_prefix_is_the_leading_layers_that_train_nothing(unfreeze, length):
    model = _model(["model=vgg11", "model.width=8"], "features", unfreeze)
    first_trained = next((i for i, layer in enumerate(model.features)
                          if any(p.requires_grad for p in layer.parameters())), len(model.features))
    expected = {"all": len(model.features), "block5": first_trained, 0: 0}[length]
    assert frozen_prefix_length(model) == expected
    if length == "block5":
        assert 0 < expected < len(model.features) - 2
    assert frozen_prefix_length(_model(["model=mlp"], "backbone")) == 0  # not a conv base and a head
    assert frozen_prefix_length(_model(["model=vgg11", "model.width=8"])) == 0  # nothing frozen


@pytest.mark.parametrize("unfreeze", ["[]", "[block5]"])
def test_training_on_the_stored_outputs_gives_the_numbers_of_training_through_the_frozen_layers(
        train_run, tmp_path, caplog, unfreeze):
    caplog.set_level(logging.INFO, logger="cnnlab")
    stored, _ = train_run([*VGG, f"finetune.unfreeze={unfreeze}"], tmp_path / "stored")
    assert STORED in caplog.text
    caplog.clear()
    through, _ = train_run([*VGG, f"finetune.unfreeze={unfreeze}", "trainer.cache_frozen=false"],
                           tmp_path / "through")
    assert STORED not in caplog.text
    for a, b in zip(stored["history"], through["history"]):
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key
    assert stored["best_epoch"] == through["best_epoch"]
    assert stored["test_acc"] == pytest.approx(through["test_acc"], abs=1e-9)
    assert stored["trainable_params"] == through["trainable_params"]


def test_augmented_training_images_go_through_the_frozen_layers_every_epoch(train_run, caplog):
    caplog.set_level(logging.INFO, logger="cnnlab")
    results, _ = train_run([*VGG, "trainer.max_epochs=1", "dataset.augment.flip=true"])
    assert STORED not in caplog.text and results["status"] == "completed"
