"""The presets at the documents' settings: what each composes to, and experiment=report end to end, offline."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.data import build_data
from cnnlab.finetune import freeze
from cnnlab.models import build_model
from cnnlab.models.summary import summarize
from cnnlab.train.checkpoint import load_checkpoint
from conftest import FAST, FASHION_DEBIAN, compose_config, run_cli
from test_data_archives import build_zip
from test_presets import sweep_jobs


def params(model, trainable=False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


# ---------------------------------------------------------------- overfitting (seed 000)
def test_overfitting_default_arm_is_the_reports_network_on_110_images_of_two_classes():
    cfg = compose_config(["experiment=overfitting"])  # no -m: the baseline
    assert cfg.model.name == "report_cnn" and cfg.dataset.classes == [0, 6]
    assert cfg.dataset.train_size == 110 and cfg.dataset.image_size == 128
    assert params(build_model(cfg.model, (1, 128, 128), 2)) >= 3_000_000


@pytest.mark.parametrize("variant, name, count", [("baseline", "report_cnn", 3_320_834),
                                                  ("report_dropout", "report_cnn_dropout", 3_304_322),
                                                  ("report_batch_norm", "report_cnn_bn", 3_321_794)])
def test_overfitting_arms_are_the_reports_networks(variant, name, count):
    cfg = compose_config(["experiment=overfitting", f"variant={variant}"])
    model = build_model(cfg.model, (1, 128, 128), 2)
    assert cfg.model.name == name and params(model) == count  # 1 grey channel: 576 fewer than the report's RGB
    if variant == "report_batch_norm":  # conv -> pool -> BN -> activation, as the report orders it
        kinds = [type(m).__name__ for m in model.features][:4]
        assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]


@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_overfitting_data_is_two_fashion_classes_enlarged_to_128(tmp_path):
    cfg = compose_config(["experiment=overfitting", "data_dir=" + str(tmp_path)])
    bundle = build_data(cfg.dataset, tmp_path, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert bundle.classes == ["T-shirt/top", "Shirt"] and bundle.shape == (1, 128, 128)
    assert len(bundle.train.x) == 110 and len(bundle.val.x) == 500 and len(bundle.test.x) == 2000
    counts = torch.bincount(bundle.train.y, minlength=2).tolist()
    assert min(counts) >= 40  # both classes among the 110


# ---------------------------------------------------------------- architectures
@pytest.mark.parametrize("size, width, train_size, epochs", [("small", 8, 3000, 10), ("full", 64, None, 30)])
def test_architectures_small_by_default_and_full_with_size_full(size, width, train_size, epochs):
    for job in sweep_jobs("architectures"):
        if job[-1] != "seed=0":
            continue
        cfg = compose_config(["experiment=architectures", f"size={size}"] + job)
        assert cfg.dataset.name == "fashion_mnist"
        assert getattr(cfg.model, "width", None) == (width if cfg.model.family in ("vgg", "inception", "resnet") else None)
        assert cfg.dataset.train_size == train_size and cfg.trainer.max_epochs == epochs
        assert cfg.sched.name == ("cosine" if size == "full" else "none")
    assert compose_config(["experiment=architectures", "model=resnet18"]).model.width == 8  # small is the default


# ---------------------------------------------------------------- finetune
def test_finetune_pretrains_on_disjoint_classes_and_reads_that_checkpoint():
    pretrain = compose_config(["experiment=finetune_pretrain"])
    tune = compose_config(["experiment=finetune"])
    assert not set(pretrain.dataset.classes) & set(tune.dataset.classes)
    assert len(tune.dataset.classes) == 2 and tune.dataset.train_size == 240
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        run_dir = compose("config", overrides=["experiment=finetune_pretrain"], return_hydra_config=True).hydra.run.dir
    from cnnlab import naming

    naming.release_unused(None)  # the dated default this compose claimed, as conftest.compose_config does
    assert tune.model.pretrained == f"{run_dir}/checkpoints/best.pt"


def test_finetune_arms_that_learn_from_nothing_get_a_higher_rate():
    lr = {v: compose_config(["experiment=finetune", f"variant={v}"]).optim.lr
          for v in ("scratch", "frozen", "last_block", "unfrozen")}
    assert lr["scratch"] == lr["frozen"] == 10 * lr["last_block"] == 10 * lr["unfrozen"]


# ---------------------------------------------------------------- report (seed 000 end to end)
@pytest.mark.parametrize("variant, total, trainable", [
    ("baseline", 3_321_410, 3_321_410), ("report_dropout", 3_304_898, 3_304_898),
    ("vgg16_frozen", 14_731_074, 16_386), ("vgg16_block5", 14_731_074, 7_095_810)])
def test_report_arms_have_the_reports_parameter_counts_at_128x128x3(variant, total, trainable):
    cfg = compose_config(["experiment=report", f"variant={variant}"])
    assert cfg.dataset.name == "cats_vs_dogs" and cfg.dataset.train_size == 110 and cfg.dataset.image_size == 128
    model = build_model(cfg.model, (3, 128, 128), 2)
    freeze(model, cfg.finetune.freeze, cfg.finetune.unfreeze)
    text = summarize(model, (3, 128, 128))
    assert f"Total params: {total:,}" in text and f"Trainable params: {trainable:,}" in text


def plant_vgg16_weights(torch_home: Path) -> dict:
    """A random torchvision VGG16 conv base where torchvision looks for its ImageNet weights."""
    import torchvision.models as tvm
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    target = torch_home / "hub" / "checkpoints" / Path(tvm.VGG16_Weights.DEFAULT.url).name
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    return state


def test_report_runs_end_to_end_offline(tmp_path):
    data_dir = tmp_path / "data"
    build_zip(data_dir / "cats_and_dogs_filtered.zip", "cats_vs_dogs")
    planted = plant_vgg16_weights(tmp_path / "torch")
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "experiment=report", "seed=0", "trainer.max_epochs=1", "dataset.image_size=32",
                    "dataset.train_size=8", "dataset.batch_size=4", "trainer.num_threads=1", f"data_dir={data_dir}",
                    "dataset.download=false", f"hydra.sweep.dir={sweep}", *FAST],
                   cwd=tmp_path, env={"TORCH_HOME": str(tmp_path / "torch")}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {}
    for path in sweep.rglob("results.json"):
        record = json.loads(path.read_text())
        results[path.parent.name] = (record, path.parent)
    arms = {name.split(",")[0] for name in results}
    assert arms == {f"variant={v}" for v in ("baseline", "report_dropout", "report_batch_norm", "l2",
                                             "vgg16_frozen", "vgg16_block5")}
    assert all(r["status"] == "completed" for r, _ in results.values())
    by_arm = {name.split(",")[0]: value for name, value in results.items()}
    frozen, frozen_dir = by_arm["variant=vgg16_frozen"]
    block5, block5_dir = by_arm["variant=vgg16_block5"]
    assert frozen["trainable_params"] == 512 * 2 + 2  # at 32x32 the conv base ends in 1x1x512
    assert frozen["trainable_params"] < block5["trainable_params"] < block5["params"]
    weights = load_checkpoint(frozen_dir / "checkpoints" / "last.pt")["model"]
    for name in ("features.0.weight", "features.28.weight"):  # the planted weights, untouched by training
        assert torch.equal(weights[name], planted[name])
    moved = load_checkpoint(block5_dir / "checkpoints" / "last.pt")["model"]
    assert torch.equal(moved["features.0.weight"], planted["features.0.weight"])
    assert not torch.equal(moved["features.28.weight"], planted["features.28.weight"])  # block5 trained

    from cnnlab.report.cli import make_report
    report = make_report(sweep, figures=False).read_text()
    assert "val-as-test" not in report  # the held-out half of validation/ is a real test split
    against = [line for line in report.splitlines() if line.startswith("- Against the reference")]
    assert any("variant=vgg16_block5" in line for line in against), report
