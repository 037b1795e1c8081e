"""dataset.image_size for the in-memory datasets: resized once on the device, uint8 in and out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.resize import CHUNK, resize_images
from cnnlab.train.checkpoint import load_checkpoint


def _pil_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """PIL's bilinear resize (antialiased when shrinking): the reference torchvision matches."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


@pytest.mark.parametrize("size", [56, 128, 14, 9])  # enlarge and shrink, by whole and odd factors
def test_resize_matches_pils_bilinear_resize(size):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = resize_images(torch.from_numpy(images).unsqueeze(1), size)
    assert out.dtype == torch.uint8 and out.shape == (3, 1, size, size)
    for got, image in zip(out[:, 0].numpy(), images):
        diff = np.abs(got.astype(int) - _pil_bilinear(image, size).astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.5


def test_shrinking_is_antialiased():
    stripes = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    stripes[..., ::2] = 255  # one-pixel stripes: plain bilinear sampling at 1/4 would keep only some
    out = resize_images(stripes, 8)[..., 1:-1]  # the border columns' filter is cut off by the edge
    assert (out.float() - 127.5).abs().max() <= 1  # averaged to grey, as antialiasing should


def test_colour_images_keep_channels_and_constants_stay_constant():
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    x[:, 0], x[:, 1], x[:, 2] = 10, 128, 250
    out = resize_images(x, 48)
    assert out.shape == (2, 3, 48, 48)
    assert out[:, 0].eq(10).all() and out[:, 1].eq(128).all() and out[:, 2].eq(250).all()


def test_same_size_is_the_tensor_itself_and_chunks_are_seamless():
    x = torch.randint(0, 256, (CHUNK + 3, 1, 8, 8), dtype=torch.uint8)
    assert resize_images(x, 8) is x
    out = resize_images(x, 12)
    assert torch.equal(out[CHUNK:], resize_images(x[CHUNK:], 12))
    assert torch.equal(out[:2], resize_images(x[:2], 12))


def test_a_run_with_image_size_trains_on_resized_images(train_run):
    results, run_dir = train_run(["dataset=digits", "dataset.image_size=16", "trainer.max_epochs=1",
                                  "dataset.train_size=64", "trainer.num_threads=1"])
    assert results["status"] == "completed"
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert list(saved["shape"]) == [1, 16, 16]
    # lecture_cnn's first dense layer sees the 16x16 input's map: (16-4)/2 = 6 -> 64 x 6 x 6
    assert saved["model"]["classifier.1.weight"].shape[1] == 64 * 6 * 6


def test_build_data_resizes_every_split_once(tmp_path):
    from cnnlab.config import DatasetConfig
    from cnnlab.data import build_data

    cfg = DatasetConfig(name="digits", image_size=20, val_split=0.0, val_from_test=True, train_size=50)
    bundle = build_data(cfg, tmp_path, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert bundle.shape == (1, 20, 20)
    assert bundle.train.x.shape == (50, 1, 20, 20) and bundle.test.x.shape == (360, 1, 20, 20)
    assert bundle.val.x is bundle.test.x  # val_from_test: one tensor, resized once
    xb, _ = next(iter(bundle.train))
    assert xb.shape[1:] == (1, 20, 20)
