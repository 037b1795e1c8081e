"""trainer.precision=fp32 is full fp32: TF32 only for precision=auto or an explicit trainer.tf32=true."""
import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.config import validate
from cnnlab.errors import ConfigError
from cnnlab.train.runtime import set_tf32, use_tf32
from conftest import compose_config


@pytest.mark.parametrize("precision, tf32, expected", [
    ("auto", None, True), ("fp32", None, False), ("bf16", None, False), ("fp16", None, False),
    ("fp32", True, True), ("auto", False, False), ("bf16", True, True),
])
def test_tf32_is_on_only_where_asked_for(precision, tf32, expected):
    assert use_tf32(tf32, precision) is expected


def test_set_tf32_sets_both_backends_and_back():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        set_tf32(True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        set_tf32(False)  # a sweep's next job in the same process must not inherit the previous job's choice
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_trainer_tf32_is_a_config_key():
    assert compose_config([]).trainer.tf32 is None
    assert compose_config(["trainer.tf32=true", "trainer.precision=fp32"]).trainer.tf32 is True
    with pytest.raises(ConfigError, match="trainer.tf32"):
        validate(OmegaConf.create({"trainer": {"tf32": "maybe"}}))
