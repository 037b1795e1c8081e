"""trainer.test_time_flip: every validation and test figure is of each image averaged with its mirror
image, the training is untouched, and cnnlab-predict, resuming and the frozen-layer cache agree."""
import pytest
import torch
import torch.nn as nn

from cnnlab.config import default_data_dir
from cnnlab.data import build_data
from cnnlab.diagnostics import class_probabilities
from cnnlab.finetune import freeze
from cnnlab.models import build_model
from cnnlab.predict import predict
from cnnlab.train import frozen_features, resume_settings
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.evaluate import eval_logits, evaluate, mirror_averaged
from cnnlab.train.objective import Objective
from conftest import compose_config

RUN = ["trainer.num_threads=1", "trainer.max_epochs=3", "model=lecture_cnn", "dataset.train_size=600"]


@pytest.mark.parametrize("classes", [1, 2, 10])  # a one-logit (sigmoid) head, and softmax heads
def test_the_averaged_logits_give_the_mean_of_both_predictions_probabilities(classes):
    torch.manual_seed(0)
    a, b = torch.randn(64, classes) * 4, torch.randn(64, classes) * 4
    mean = (class_probabilities(a) + class_probabilities(b)) / 2
    assert torch.allclose(class_probabilities(mirror_averaged(a, b)), mean, atol=1e-6)
    assert torch.allclose(mirror_averaged(a, a), a if classes == 1 else torch.log_softmax(a, 1), atol=1e-4)


def test_eval_logits_see_each_image_and_its_mirror_image():
    class LeftMinusRight(nn.Module):  # class 1 where the left half is brighter than the right
        def forward(self, x):
            half = x.shape[-1] // 2
            score = x[..., :half].mean((1, 2, 3)) - x[..., half:].mean((1, 2, 3))
            return torch.stack([torch.zeros_like(score), score], dim=1)

    x = torch.zeros(4, 1, 6, 6)
    x[..., :3] = 1.0  # every image bright on the left
    plain, flipped = eval_logits(LeftMinusRight(), x), eval_logits(LeftMinusRight(), x, test_time_flip=True)
    assert (plain.argmax(1) == 1).all()
    assert torch.allclose(class_probabilities(flipped), torch.full((4, 2), 0.5))  # +1 and -1: even odds


def _reevaluate(overrides, weights, split, flip):
    cfg = compose_config(overrides)
    data = build_data(cfg.dataset, default_data_dir(), torch.device("cpu"), torch.Generator().manual_seed(cfg.seed),
                      True)
    model = build_model(cfg.model, data.shape, data.num_classes).to(memory_format=torch.channels_last)
    model.load_state_dict(weights)
    return evaluate(model, getattr(data, split), Objective(cfg.loss, model), torch.device("cpu"), None,
                    data.num_classes > 5, test_time_flip=flip)


def test_a_run_with_test_time_flips_trains_the_same_weights_and_reports_the_averaged_figures(train_run, tmp_path):
    plain, plain_dir = train_run(RUN, tmp_path / "plain")
    flipped, flipped_dir = train_run(RUN + ["trainer.test_time_flip=true"], tmp_path / "flipped")
    assert (plain["test_time_flip"], flipped["test_time_flip"]) == (False, True)
    last = [load_checkpoint(d / "checkpoints" / "last.pt")["model"] for d in (plain_dir, flipped_dir)]
    assert all(torch.equal(last[0][k], last[1][k]) for k in last[0])  # evaluation does not touch training
    assert [r["train/loss"] for r in plain["history"]] == [r["train/loss"] for r in flipped["history"]]
    assert [r["val/acc"] for r in plain["history"]] != [r["val/acc"] for r in flipped["history"]]
    best = load_checkpoint(flipped_dir / "checkpoints" / "best.pt")["model"]
    for split, flip, results, key in [("test", True, flipped, "test"), ("val", True, flipped, "best_val"),
                                      ("test", False, plain, "test")]:
        weights = best if flip else load_checkpoint(plain_dir / "checkpoints" / "best.pt")["model"]
        metrics = _reevaluate(RUN, weights, split, flip)
        assert metrics["acc"] == results[f"{key}_acc"], (split, flip)
        assert metrics["loss"] == pytest.approx(results[f"{key}_loss"], rel=1e-5)
    checkpoint = load_checkpoint(flipped_dir / "checkpoints" / "best.pt")
    from cnnlab.predict import load_model

    model, _ = load_model(flipped_dir / "checkpoints" / "best.pt")
    images = torch.randint(0, 256, (5, *checkpoint["shape"]), dtype=torch.uint8)
    both = (predict(model, {**checkpoint, "config": {}}, images)
            + predict(model, {**checkpoint, "config": {}}, images.flip(-1))) / 2
    assert torch.allclose(predict(model, checkpoint, images), both, atol=1e-6)  # cnnlab-predict as evaluated


def test_resuming_with_the_other_setting_is_refused():
    refused, _ = resume_settings.compare({"trainer": {"test_time_flip": False}}, {"trainer": {"test_time_flip": True}})
    assert refused == [("trainer.test_time_flip", False, True)]


def test_the_frozen_layers_outputs_are_not_stored_when_evaluation_flips_the_images():
    overrides = ["model=vgg11", "model.width=8", "finetune.freeze=features"]
    model = build_model(compose_config(overrides).model, (1, 8, 8), 10)
    freeze(model, "features", [])
    assert frozen_features.plan(model, compose_config(overrides), distributed=False) > 0
    flipped = compose_config(overrides + ["trainer.test_time_flip=true"])
    assert frozen_features.plan(model, flipped, distributed=False) == 0  # val would need the mirror images' outputs
