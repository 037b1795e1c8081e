"""Every model preset on every input shape; the seeds' parameter counts; init, activation, heads."""
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from cnnlab.errors import ConfigError
from cnnlab.models import build_model
from cnnlab.models.schema import ModelCommon, model_config
from cnnlab.models.summary import count_params, summarize
from conftest import CONF

PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 128, 128)]


def preset(name: str, **changes) -> ModelCommon:
    """The preset's family config (its YAML without the defaults list), as validate builds it."""
    values = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{name}.yaml"))
    values.pop("defaults", None)
    return model_config({**values, **changes})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-2 steps gain nothing from threads, and on a busy machine OpenMP's spinning makes them 3x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_interface_presets_exist():
    assert set(PRESETS) >= {"mlp", "lecture_cnn", "keras_cnn", "report_cnn", "cnn5x5", "vgg11", "vgg16", "alexnet",
                            "googlenet", "resnet18", "resnet34", "resnet50", "plain18", "plain34", "keras_binary_cnn"}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_and_takes_a_training_step(name, shape):
    if name == "cnn5x5" and shape[1] == 128:  # no pooling: 222M parameters at 128x128, 17 s of the suite
        pytest.skip("seed 000's 28x28 network has no pooling; its 32x32 case runs the same code")
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
    with torch.no_grad():  # one plain SGD step (torch.optim's first step costs a 2 s import)
        for p in model.parameters():
            p.add_(p.grad, alpha=-0.01)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    names = [n for n, _ in model.named_parameters()]
    assert all(any(n.startswith(prefix + ".") for n in names) for prefix in model.head_prefixes)


@pytest.mark.parametrize("name, shape, classes, expected", [
    ("lecture_cnn", (1, 28, 28), 10, 1_199_882),  # seed 002
    ("keras_cnn", (1, 28, 28), 10, 93_322),  # seed 003
    ("report_cnn", (3, 128, 128), 2, 3_321_410),  # seed 000
    ("report_cnn_dropout", (3, 128, 128), 2, 3_304_898),  # seed 000's dropout variant
    ("keras_binary_cnn", (3, 150, 150), 2, 3_453_121),  # seed 001
])
def test_seed_networks_have_the_seeds_parameter_counts(name, shape, classes, expected):
    assert count_params(build_model(preset(name), shape, classes))[0] == expected


def test_vgg16_fine_tuning_network_matches_seed_000():
    model = build_model(preset("vgg16_finetune"), (3, 128, 128), 2)
    assert sum(p.numel() for p in model.features.parameters()) == 14_714_688
    assert model.features(torch.zeros(1, 3, 128, 128)).shape == (1, 512, 4, 4)
    assert count_params(model) == (14_731_074, 14_731_074)
    for name, p in model.named_parameters():  # conv base frozen, then block5 trained again
        p.requires_grad_(not name.startswith("features."))
    assert count_params(model)[1] == 16_386
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith("features.") or int(name.split(".")[1]) >= 24)
    assert count_params(model)[1] == 7_095_810


def test_cnn5x5_flattens_seed_004s_4x4x128_map():
    model = build_model(preset("cnn5x5"), (1, 28, 28), 10)
    assert model.features(torch.zeros(1, 1, 28, 28)).shape == (1, 128, 4, 4)
    assert model.classifier[1].in_features == 2048


@pytest.mark.parametrize("name, tv_name", [("resnet18", "resnet18"), ("resnet50", "resnet50"), ("vgg16", "vgg16"),
                                           ("alexnet", "alexnet")])
def test_imagenet_sized_models_have_torchvisions_parameter_names_and_shapes(name, tv_name):
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):  # no memory, no init: only names and shapes are compared
        reference = torchvision.models.get_model(tv_name, num_classes=1000)
        ours = build_model(preset(name), (3, 224, 224), 1000)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}


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


@pytest.mark.parametrize("name", ["mlp5x100", "lecture_cnn", "resnet18"])
def test_activation_option_takes_effect(name):
    narrow = {"width": 8} if name == "resnet18" else {}  # width is a key of resnet, not of mlp or cnn
    model = build_model(preset(name, activation="tanh", **narrow), (1, 8, 8), 10)
    assert any(isinstance(m, torch.nn.Tanh) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_batch_norm_option_adds_the_layers():
    for name, extra in (("mlp5x100", {}), ("lecture_cnn", {}), ("vgg11", {"width": 8})):
        kinds = {type(m) for m in build_model(preset(name, batch_norm=True, **extra), (1, 8, 8), 10).modules()}
        assert kinds & {torch.nn.BatchNorm1d, torch.nn.BatchNorm2d}, name
    without = build_model(preset("googlenet", batch_norm=False), (1, 8, 8), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())


def test_plain_resnet_is_the_residual_one_without_skips():
    residual = build_model(preset("resnet18", width=8), (3, 32, 32), 10)
    plain = build_model(preset("plain18", width=8), (3, 32, 32), 10)
    skip_params = {k for k in residual.state_dict() if "downsample" in k}
    assert skip_params and set(plain.state_dict()) == set(residual.state_dict()) - skip_params


def test_googlenet_aux_heads_in_training_only_and_naive_modules_cost_more():
    model = build_model(preset("googlenet", aux_heads=True), (3, 16, 16), 10)
    assert model.head_prefixes == ["fc", "aux1.fc2", "aux2.fc2"]
    out = model(torch.randn(2, 3, 16, 16))
    assert isinstance(out, tuple) and out[0].shape == (2, 10) and [a.shape for a in out[1]] == [(2, 10)] * 2
    model.eval()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    naive = count_params(build_model(preset("googlenet", inception="naive"), (3, 16, 16), 10))[0]
    reduced = count_params(build_model(preset("googlenet"), (3, 16, 16), 10))[0]
    assert naive > 2 * reduced


def test_googlenet_width_scales_every_layer():
    full = build_model(preset("googlenet", aux_heads=True), (1, 8, 8), 10)
    quarter = build_model(preset("googlenet", aux_heads=True, width=16), (1, 8, 8), 10)
    assert count_params(build_model(preset("googlenet"), (1, 8, 8), 10))[0] == 5_982_250  # the paper's widths
    assert full.inception5b.out_channels == 1024 and quarter.inception5b.out_channels == 256
    assert set(full.state_dict()) == set(quarter.state_dict())  # the same layers, narrower
    assert count_params(full)[0] / 20 < count_params(quarter)[0] < count_params(full)[0] / 12
    out, aux = quarter(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and [a.shape for a in aux] == [(2, 10)] * 2


def test_aux_heads_outside_inception_is_a_config_error():
    with pytest.raises(ConfigError, match="model.aux_heads does nothing in model=resnet18"):
        build_model(preset("resnet18", aux_heads=True), (3, 32, 32), 10)


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


def test_summary_leaves_the_model_as_it_was():
    model = build_model(preset("resnet18", width=8), (3, 32, 32), 10).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = summarize(model, (3, 32, 32))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert f"Total params: {count_params(model)[0]:,}" in text and "layer1.0 (BasicBlock)" in text


@pytest.mark.parametrize("size, ceil, side", [(28, False, 3), (28, True, 4), (32, False, 4), (32, True, 4)])
def test_pool_ceil_keeps_an_odd_maps_last_row_and_column(size, ceil, side):
    model = build_model(preset("fast_cnn", pool_ceil=ceil), (1, size, size), 10)
    assert model.features(torch.zeros(2, 1, size, size)).shape == (2, 64, side, side)
    assert model.classifier[1].in_features == 64 * side * side
    assert all(m.ceil_mode == ceil for m in model.features if isinstance(m, torch.nn.MaxPool2d))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_the_cnn_flatten_gives_nn_flattens_numbers_and_keeps_the_gradients_layout(layout):
    from cnnlab.models.layers import Flatten

    torch.manual_seed(0)
    x = torch.randn(4, 8, 7, 7).contiguous(memory_format=layout)
    grad = torch.randn(4, 8 * 7 * 7)
    results = []
    for flatten in (torch.nn.Flatten(), Flatten()):
        leaf = x.clone().requires_grad_()
        y = flatten(torch.relu(leaf))
        y.backward(grad)
        results.append((y, leaf.grad))
    (y0, g0), (y1, g1) = results
    assert torch.equal(y0, y1) and torch.equal(g0, g1)
    assert g1.is_contiguous(memory_format=layout)
    model = build_model(preset("fast_cnn"), (1, 28, 28), 10)
    assert isinstance(model.classifier[0], Flatten)
