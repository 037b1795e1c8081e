"""Mirror images on digits: a mirrored 2 is no 2. `dataset.augment.flip=true` or
`trainer.test_time_flip=true` on a digit set runs (a student may want to see what it does) but says
so at the start, once; on sets whose mirror images keep their class it says nothing."""
import logging

import pytest

from cnnlab import registry
from cnnlab.data_schema import AugmentConfig, DatasetCommon

DIGIT_SETS = {"digits", "mnist", "svhn"}  # house numbers are digits too


def _mirror_warnings(log) -> list[str]:
    return [r.getMessage() for r in log.records if r.levelno == logging.WARNING and "mirror" in r.getMessage()]


@pytest.mark.parametrize("name", registry.names("dataset"))
@pytest.mark.parametrize("flip, test_time_flip", [(True, False), (False, True), (True, True), (False, False)])
def test_every_source_says_whether_mirror_images_change_its_classes(name, flip, test_time_flip):
    cfg = DatasetCommon(name=name, augment=AugmentConfig(flip=flip))
    caveat = cfg.mirror_caveat(test_time_flip)
    if name in DIGIT_SETS and (flip or test_time_flip):
        assert caveat and "digit" in caveat
        for key in (["dataset.augment.flip=true"] if flip else []) + (["trainer.test_time_flip=true"] if test_time_flip else []):
            assert key in caveat
        assert "experiment=fast" in caveat  # what to use instead
    else:
        assert caveat is None


@pytest.mark.parametrize("overrides", [["dataset.augment.flip=true"], ["trainer.test_time_flip=true"]])
def test_a_digits_run_with_mirror_images_trains_and_warns_once(train_run, cnnlab_log, overrides):
    results, _ = train_run(["dataset=digits", "model=mlp", "trainer.max_epochs=1"] + overrides)
    assert results["test_acc"] is not None
    warnings = _mirror_warnings(cnnlab_log)
    assert len(warnings) == 1 and overrides[0] in warnings[0]


def test_mirror_images_of_other_sets_bring_no_warning(train_run, cnnlab_log):
    train_run(["dataset=synthetic", "dataset.num_samples=64", "model=mlp", "trainer.max_epochs=1",
               "dataset.augment.flip=true", "trainer.test_time_flip=true"])
    assert _mirror_warnings(cnnlab_log) == []


def test_a_plain_digits_run_brings_no_mirror_warning(train_run, cnnlab_log):
    train_run(["dataset=digits", "model=mlp", "trainer.max_epochs=1"])
    assert _mirror_warnings(cnnlab_log) == []
