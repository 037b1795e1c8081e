"""Every model preset on every input shape; the seeds' parameter counts; init, activation, heads."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from cnnlab.config import ModelConfig
from cnnlab.errors import ConfigError
from cnnlab.models import build_model
from cnnlab.models.summary import count_params, summarize
from conftest import CONF

PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 128, 128)]


def preset(name: str, **changes) -> ModelConfig:
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(CONF / "model" / f"{name}.yaml"), changes)
    return OmegaConf.to_object(cfg)


def test_the_interface_presets_exist():
    assert set(PRESETS) >= {"mlp", "lecture_cnn", "keras_cnn", "report_cnn", "cnn5x5", "vgg11", "vgg16", "alexnet",
                            "googlenet", "resnet18", "resnet34", "resnet50", "plain18", "plain34", "keras_binary_cnn"}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_and_takes_a_training_step(name, shape):
    torch.manual_seed(0)
    cfg = preset(name)
    classes = 2 if cfg.binary_head else 10
    model = build_model(cfg, shape, classes)
    model.train()
    x, y = torch.randn(2, *shape), torch.tensor([0, 1])
    logits = model(x)
    assert logits.shape == (2, 1 if cfg.binary_head else classes)
    loss = (F.binary_cross_entropy_with_logits(logits[:, 0], y.float()) if cfg.binary_head
            else F.cross_entropy(logits, y))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name, shape, classes, expected", [
    ("lecture_cnn", (1, 28, 28), 10, 1_199_882),  # seed 002
    ("keras_cnn", (1, 28, 28), 10, 93_322),  # seed 003
    ("report_cnn", (3, 128, 128), 2, 3_321_410),  # seed 000
    ("report_cnn_dropout", (3, 128, 128), 2, 3_304_898),  # seed 000's dropout variant
    ("keras_binary_cnn", (3, 150, 150), 2, 3_453_121),  # seed 001
])
def test_seed_networks_have_the_seeds_parameter_counts(name, shape, classes, expected):
    assert count_params(build_model(preset(name), shape, classes))[0] == expected


def test_vgg16_conv_base_matches_seed_000():
    model = build_model(preset("vgg16"), (3, 128, 128), 2)
    assert sum(p.numel() for p in model.features.parameters()) == 14_714_688
    assert model.features(torch.zeros(1, 3, 128, 128)).shape == (1, 512, 4, 4)


def test_keras_cnn_without_pooling_ends_in_seed_003s_22x22x64_map():
    model = build_model(preset("keras_cnn", pool=False), (1, 28, 28), 10)
    assert model.features(torch.zeros(1, 1, 28, 28)).flatten(1).shape[1] == 30_976


def test_report_cnn_batch_norm_follows_seed_000s_order():
    model = build_model(preset("report_cnn", batch_norm=True), (3, 128, 128), 2)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:4] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert "BatchNorm1d" in [type(m).__name__ for m in model.classifier]


def test_dropout_option_adds_dropout_before_dense_layers():
    model = build_model(preset("report_cnn", dropout=0.5), (3, 32, 32), 2)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.classifier) == 3


@pytest.mark.parametrize("kind, expected_std", [("normal", lambda fan: 0.01), ("xavier", lambda fan: math.sqrt(1 / fan)),
                                                ("he", lambda fan: math.sqrt(2 / fan))])
def test_init_sets_the_weight_scale(kind, expected_std):
    torch.manual_seed(0)
    model = build_model(preset("mlp5x100", init=kind, init_std=0.01), (1, 28, 28), 10)
    layer = model[3]  # a 100 -> 100 hidden layer
    assert layer.weight.std().item() == pytest.approx(expected_std(100), rel=0.05)
    assert torch.count_nonzero(layer.bias) == 0


def test_activation_option_takes_effect():
    model = build_model(preset("mlp5x100", activation="sigmoid"), (1, 8, 8), 10)
    assert any(isinstance(m, torch.nn.Sigmoid) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_plain_resnet_is_the_residual_one_without_skips():
    residual = build_model(preset("resnet18", width=8), (3, 32, 32), 10)
    plain = build_model(preset("plain18", width=8), (3, 32, 32), 10)
    skip_params = {k for k in residual.state_dict() if "downsample" in k}
    assert skip_params and set(plain.state_dict()) == set(residual.state_dict()) - skip_params


def test_resnet_uses_torchvision_parameter_names():
    names = set(build_model(preset("resnet18"), (3, 224, 224), 1000).state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "fc.weight", "fc.bias"} <= names


def test_googlenet_aux_heads_in_training_only_and_naive_modules_cost_more():
    model = build_model(preset("googlenet", aux_heads=True), (3, 32, 32), 10)
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and out[0].shape == (2, 10) and [a.shape for a in out[1]] == [(2, 10)] * 2
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    naive = count_params(build_model(preset("googlenet", inception="naive"), (3, 32, 32), 10))[0]
    reduced = count_params(build_model(preset("googlenet"), (3, 32, 32), 10))[0]
    assert naive > 2 * reduced


def test_binary_head_needs_two_classes():
    with pytest.raises(ConfigError, match="binary_head"):
        build_model(preset("keras_binary_cnn"), (3, 32, 32), 10)


def test_summary_totals_and_frozen_counts():
    model = build_model(preset("lecture_cnn"), (1, 28, 28), 10)
    text = summarize(model, (1, 28, 28))
    assert "Total params: 1,199,882" in text and "Non-trainable params: 0" in text
    assert "(None, 64, 12, 12)" in text
    for p in model.features.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.features.parameters())
    text = summarize(model, (1, 28, 28))
    assert f"Trainable params: {1_199_882 - frozen:,}" in text and f"Non-trainable params: {frozen:,}" in text
    assert "[frozen]" in text
