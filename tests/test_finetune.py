"""Fine-tuning: pretrained weights by name and shape, freezing and unfreezing, and a class filter."""
from __future__ import annotations

import pytest
import torch

from cnnlab.config import FinetuneConfig
from cnnlab.data.splits import Splits, select_classes
from cnnlab.errors import CnnlabError, ConfigError, DataError
from cnnlab.finetune import apply_finetune, block_aliases, freeze, is_head, load_pretrained
from cnnlab.models import build_model
from conftest import compose_config


def _model(name: str, classes: int = 10, shape=(1, 8, 8), **extra):
    cfg = compose_config([f"model={name}"] + [f"model.{k}={v}" for k, v in extra.items()]).model
    return build_model(cfg, shape, classes), cfg


def _one_step(model, shape=(1, 8, 8), classes=10):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    model.train()
    x, y = torch.randn(16, *shape), torch.randint(0, classes, (16,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_frozen_backbone_does_not_change_but_the_head_does():
    model, _ = _model("resnet18", width=8)
    freeze(model, "backbone", [])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _one_step(model)
    after = model.state_dict()
    for name in before:
        if is_head(name, model.head_prefixes):
            assert not torch.equal(before[name], after[name]), name
        else:  # weights and batch norm running statistics alike
            assert torch.equal(before[name], after[name]), name


def test_unfreeze_trains_the_last_block_again():
    model, _ = _model("resnet18", width=8)
    freeze(model, "backbone", ["layer4"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("layer4.", "fc.")) for n in trainable)
    assert any(n.startswith("layer4.") for n in trainable)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _one_step(model)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("layer4.") for k in changed)
    assert not any(k.startswith(("layer1.", "conv1.", "bn1.")) for k in changed)


def test_vgg16_block5_alias_is_seed_000s_last_block():
    model, _ = _model("vgg16", shape=(3, 32, 32), width=8)
    assert block_aliases(model)["block5"] == ["features.24", "features.26", "features.28"]
    freeze(model, "features", ["block5"])
    trainable = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}
    assert {"features.24", "features.26", "features.28"} <= trainable
    assert not any(n.startswith("features.") and n not in {"features.24", "features.26", "features.28"}
                   for n in trainable)


def test_unknown_prefix_lists_the_top_level_modules():
    model, _ = _model("resnet18", width=8)
    with pytest.raises(ConfigError, match=r"layer9.*conv1, bn1, layer1, layer2, layer3, layer4, fc"):
        freeze(model, "backbone", ["layer9"])
    with pytest.raises(ConfigError, match="needs finetune.freeze"):
        freeze(model, None, ["layer4"])


def test_checkpoint_backbone_loads_into_a_model_with_other_classes(train_run, tmp_path):
    _, run_dir = train_run(["model=lecture_cnn", "trainer.max_epochs=1"], tmp_path / "pre")
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    model, cfg = _model("lecture_cnn", classes=2)
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if is_head(k, model.head_prefixes)}
    load_pretrained(model, run_dir / "checkpoints" / "last.pt")
    for name, tensor in model.state_dict().items():
        if is_head(name, model.head_prefixes):
            assert tensor.shape[0] == 2 and torch.equal(tensor, fresh_head[name])
        else:
            assert torch.equal(tensor, saved[name]), name

    # and end to end: a 2-class run from that checkpoint with the backbone frozen
    results, _ = train_run(["model=lecture_cnn", "trainer.max_epochs=1", "dataset.classes=[3,8]",
                            f"model.pretrained={run_dir / 'checkpoints' / 'last.pt'}", "finetune.freeze=backbone"],
                           tmp_path / "fine")
    assert results["trainable_params"] == 128 * 2 + 2


def test_a_checkpoint_of_another_architecture_is_refused_with_the_keys(train_run, tmp_path):
    _, run_dir = train_run(["model=lecture_cnn", "trainer.max_epochs=1"], tmp_path / "pre")
    model, _ = _model("keras_cnn", classes=10)
    with pytest.raises(ConfigError, match=r"written for lecture_cnn.*features\.\d+\.weight"):
        load_pretrained(model, run_dir / "checkpoints" / "last.pt")
    with pytest.raises(CnnlabError, match="does not exist"):
        load_pretrained(model, tmp_path / "nope.pt")


def test_imagenet_offline_is_a_clear_error(monkeypatch):
    import torchvision.models as tvm

    def offline(self, *args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", offline)
    model, cfg = _model("resnet18", width=8)
    cfg.pretrained = "imagenet"
    with pytest.raises(DataError, match=r"ResNet18_Weights.*cached as .*checkpoints.*model.pretrained=RUN_DIR"):
        apply_finetune(model, cfg, FinetuneConfig(), (1, 8, 8))
    plain, cfg = _model("plain18", width=8)
    cfg.pretrained = "imagenet"
    with pytest.raises(ConfigError, match="not plain18"):
        apply_finetune(plain, cfg, FinetuneConfig(), (1, 8, 8))


def test_imagenet_weights_adapt_the_first_conv_to_gray(monkeypatch):
    import torchvision.models as tvm

    reference = tvm.resnet18().state_dict()
    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", lambda self, *a, **k: reference)
    model, cfg = _model("resnet18", shape=(1, 64, 64), stem="imagenet")
    cfg.pretrained = "imagenet"
    apply_finetune(model, cfg, FinetuneConfig(), (1, 64, 64))
    state = model.state_dict()
    assert torch.allclose(state["conv1.weight"], reference["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(state["layer4.1.conv2.weight"], reference["layer4.1.conv2.weight"])
    assert state["fc.weight"].shape == (10, 512)


def test_select_classes_relabels_in_the_given_order():
    x = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 3] * 3)
    s = select_classes(Splits(x, y, x, y, ["a", "b", "c", "d"]), [3, 1])
    assert s.classes == ["d", "b"] and s.train_y.tolist() == [1, 0] * 3
    assert s.train_x.flatten().tolist() == [1, 3, 5, 7, 9, 11]
    with pytest.raises(DataError, match="0 to 3"):
        select_classes(Splits(x, y, x, y, ["a", "b", "c", "d"]), [4])


def test_the_head_is_new_when_the_classes_differ_even_if_their_number_does_not(train_run, tmp_path):
    _, run_dir = train_run(["model=lecture_cnn", "trainer.max_epochs=1", "dataset.classes=[0,1,2]"], tmp_path / "pre")
    path = run_dir / "checkpoints" / "last.pt"
    saved = torch.load(path, weights_only=True)
    for classes, head_copied in ((saved["classes"], True), (["7", "8", "9"], False)):
        model, _ = _model("lecture_cnn", classes=3)
        load_pretrained(model, path, classes)
        head = [k for k in model.state_dict() if is_head(k, model.head_prefixes)]
        assert all(torch.equal(model.state_dict()[k], saved["model"][k]) == head_copied for k in head)
