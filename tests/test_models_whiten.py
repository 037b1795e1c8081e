"""model.whiten: the first convolution as fixed whitening filters of the training split's patches."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import build_model
from cnnlab.models import whiten
from cnnlab.models.schema import model_config
from cnnlab.train.checkpoint import load_checkpoint
from conftest import run_cli


def fast_cnn(**changes):
    return build_model(model_config({"name": "fast_cnn", "family": "cnn", "blocks": [[16], [32]], "padding": "same",
                                     "batch_norm": True, "dense": [], **changes}), (1, 12, 12), 10)


def correlated_images(n=600, side=12, seed=0):
    """Smoothed noise plus an offset: neighbouring pixels correlated, patches far from white."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, side + 2, side + 2, generator=g)
    return F.avg_pool2d(x, 3, stride=1) * 3 + 0.5


def test_the_filters_decorrelate_the_training_patches_and_come_in_pairs():
    model = fast_cnn()
    images = correlated_images()
    whiten.whiten_first_conv(model, images)
    conv = whiten.first_conv(model)
    out = F.conv2d(images, conv.weight, conv.bias)  # every valid patch, as the statistics saw them
    first = out[:, :8].transpose(0, 1).reshape(8, -1)
    assert first.mean(1).abs().max() < 1e-4  # the bias centres each filter on the patches' mean
    cov = torch.cov(first)
    variances = cov.diagonal()
    assert torch.allclose(cov - torch.diag(variances), torch.zeros(8, 8), atol=1e-3)  # decorrelated
    # unit variance up to EPS: variance / (variance + EPS) for each component
    assert variances.min() > 0.5 and variances.max() < 1.0 + 1e-4
    assert torch.equal(conv.weight[8:], -conv.weight[:8])
    assert not conv.weight.requires_grad and not conv.bias.requires_grad
    later = [p for n, p in model.named_parameters() if not n.startswith("features.0.")]
    assert later and all(p.requires_grad for p in later)


@pytest.mark.parametrize("blocks, shape", [([[15]], (1, 12, 12)), ([[20]], (1, 12, 12)), ([[64]], (3, 12, 12))])
def test_a_first_convolution_the_components_cannot_fill_is_refused(blocks, shape):
    from cnnlab.errors import ConfigError

    model = build_model(model_config({"family": "cnn", "blocks": blocks, "dense": []}), shape, 10)
    with pytest.raises(ConfigError, match="model.whiten=true .* even number of filters, at most twice the values"):
        whiten.whiten_first_conv(model, torch.zeros(4, *shape))


def test_the_run_whitens_on_the_training_split_and_never_trains_the_filters(train_run, monkeypatch):
    import cnnlab.models.for_run as for_run

    seen = []

    def recording(model, cfg, train):
        seen.append(train)
        whiten.apply_whiten(model, cfg, train)
        seen.append(whiten.first_conv(model).weight.detach().clone())

    monkeypatch.setattr(for_run, "apply_whiten", recording)  # the run's model is built there
    results, run_dir = train_run(["model=fast_cnn", "model.whiten=true", "trainer.max_epochs=3"])
    train, filters = seen
    assert len(train.x) == 1293 and train.shuffle  # digits' training split, not its 144 val / 360 test images
    weights = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    assert torch.equal(weights["features.0.weight"].cpu(), filters.cpu())  # three epochs left them as they were
    assert results["test_acc"] > 0.85
    assert results["trainable_params"] == results["params"] - filters.numel() - 16


def test_a_whitened_run_resumes_to_the_same_weights(train_run, tmp_path):
    args = ["model=fast_cnn", "model.whiten=true"]
    full, _ = train_run(args + ["trainer.max_epochs=3"], tmp_path / "full")
    train_run(args + ["trainer.max_epochs=2"], tmp_path / "split")
    resumed, _ = train_run(args + ["trainer.max_epochs=3", "resume=true"], tmp_path / "split")
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_acc"] == full["test_acc"]


def test_the_learning_rate_finder_sees_the_whitened_network(monkeypatch, tmp_path):
    import cnnlab

    calls = []
    original = whiten.whiten_first_conv
    monkeypatch.setattr(whiten, "whiten_first_conv", lambda model, images: calls.append(len(images))
                        or original(model, images))
    found = cnnlab.lr_find(["model=fast_cnn", "model.whiten=true", "lr_find.steps=20", "trainer.progress=false",
                            f"hydra.run.dir={tmp_path}/lr"])
    assert calls == [1293] and found["curve"]


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (["model=fast_cnn", "model.whiten=true", "model.blocks=[[15],[32]]"], "even number of filters"),
    (["model=lecture_cnn", "model.whiten=true", "model.pretrained=imagenet"], "model.pretrained"),
])
def test_the_command_line_refuses_a_whitening_it_cannot_do(args, says, tmp_path):
    result = run_cli(args + ["trainer.max_epochs=1", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
