"""The device-resident data path: splits, batching, normalization and augmentation by definition."""
import torch

from cnnlab.data.augment import random_crop, random_flip
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.splits import Splits, carve_validation, channel_stats


def _images(n=10, c=3, h=6, w=5):
    return torch.arange(n * c * h * w, dtype=torch.int64).remainder(251).to(torch.uint8).view(n, c, h, w)


def test_random_crop_is_a_window_of_the_zero_padded_image():
    x = _images()
    pad = 2
    out = random_crop(x, pad, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, replayed
    dy = torch.randint(0, 2 * pad + 1, (len(x),), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (len(x),), generator=g)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    for i in range(len(x)):
        expected = padded[i, :, dy[i]:dy[i] + x.shape[2], dx[i]:dx[i] + x.shape[3]]
        assert torch.equal(out[i], expected)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) > 1  # offsets really vary


def test_random_flip_mirrors_about_half_of_the_images():
    x = _images(n=400, h=4, w=4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    same = [torch.equal(o, i) for o, i in zip(out, x)]
    mirrored = [torch.equal(o, i.flip(2)) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 150 < sum(mirrored) < 250


def test_loader_normalizes_and_covers_every_image_once_per_epoch():
    x = _images(n=10, c=1, h=2, w=2)
    y = torch.arange(10)
    loader = DeviceLoader(x, y, batch_size=4, mean=[0.5], std=[0.25], shuffle=True,
                          generator=torch.Generator().manual_seed(0))
    seen = []
    for xb, yb in loader:
        assert xb.dtype == torch.float32
        expected = (x[yb].float() / 255 - 0.5) / 0.25
        assert torch.allclose(xb, expected, atol=1e-5)
        seen += yb.tolist()
    assert sorted(seen) == list(range(10)) and len(loader) == 3


def test_loader_drops_a_lone_last_image_that_would_break_batch_norm():
    loader = DeviceLoader(_images(n=9), torch.zeros(9, dtype=torch.long), batch_size=4, mean=[0], std=[1],
                          shuffle=True, generator=torch.Generator().manual_seed(0))
    assert [len(b[1]) for b in loader] == [4, 4]


def test_validation_is_carved_with_a_fixed_split_and_train_size_keeps_the_first_images():
    x, y = _images(n=100, c=1, h=2, w=2), torch.arange(100)
    s = Splits(train_x=x, train_y=y, test_x=x[:5], test_y=y[:5], classes=[str(i) for i in range(100)])
    a = carve_validation(s, 0.2, None)
    b = carve_validation(s, 0.2, 30)
    assert len(a.val_y) == 20 and len(a.train_y) == 80
    assert torch.equal(a.val_y, b.val_y)  # same hold-out whatever train_size is
    assert torch.equal(b.train_y, a.train_y[:30])
    assert not set(a.val_y.tolist()) & set(a.train_y.tolist())


def test_channel_stats_on_the_unit_scale():
    x = torch.full((4, 2, 3, 3), 255, dtype=torch.uint8)
    x[:, 1] = 0
    mean, std = channel_stats(x)
    assert mean == [1.0, 0.0] and all(s > 0 for s in std)
