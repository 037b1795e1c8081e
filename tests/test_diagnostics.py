"""After training: the confusion matrix and the grid of misclassified test images."""
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.data.loader import DeviceLoader
from cnnlab.config import LossConfig
from cnnlab.diagnostics import class_probabilities, confusion_matrix, diagnosis_of, save_diagnostics
from cnnlab.train.evaluate import evaluate
from cnnlab.train.objective import Objective

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_run_writes_both_pngs_and_tensorboard_images(train_run):
    results, run_dir = train_run(["trainer.max_epochs=1", "dataset.train_size=200", "trainer.diagnostics=true"])
    for name in ("confusion_matrix.png", "misclassified.png"):
        data = (run_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
    images = EventAccumulator(str(run_dir)).Reload().Tags()["images"]
    assert {"diagnostics/confusion_matrix", "diagnostics/misclassified"} <= set(images)


def test_confusion_matrix_counts_every_test_image_once(tmp_path):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(50) % 3
    loader = DeviceLoader(x, y, 16, mean=[0.5], std=[0.25])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 3))
    test = evaluate(model, loader, Objective(LossConfig(), model), torch.device("cpu"), None, False, predictions=True)
    diagnosis = diagnosis_of(loader, ["a", "b", "c"], test["predicted"], test["confidence"])
    confusion = save_diagnostics(diagnosis, loader, ["a", "b", "c"], tmp_path, None)
    assert confusion.shape == (3, 3) and int(confusion.sum()) == 50
    assert confusion.sum(dim=1).tolist() == [17, 17, 16]  # rows are the true classes
    with torch.no_grad():
        predicted = model(next(iter(DeviceLoader(x, y, 50, mean=[0.5], std=[0.25])))[0]).argmax(1)
    assert int(confusion.trace()) == int((predicted == y).sum())
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    assert (tmp_path / "misclassified.png").stat().st_size > 0


def test_confusion_matrix_layout_and_binary_head_probabilities():
    truth, predicted = torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0])
    assert confusion_matrix(truth, predicted, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    probs = class_probabilities(torch.tensor([[0.0], [2.0]]))
    assert torch.allclose(probs.sum(1), torch.ones(2)) and probs[1, 1] > 0.8 and probs[0, 0] == 0.5


def test_diagnostics_can_be_turned_off(train_run):
    _, run_dir = train_run(["trainer.max_epochs=1", "dataset.train_size=200", "trainer.diagnostics=false"])
    assert not (run_dir / "confusion_matrix.png").exists() and (run_dir / "results.json").exists()


def test_the_misclassified_grid_shows_every_image_whole_at_a_whole_pixel_scale():
    from cnnlab.diagnostics import MISCLASSIFIED_SIZE, _misclassified_pixels

    red = torch.zeros(36, 3, 8, 8, dtype=torch.uint8)
    red[:, 0] = 255  # pure red: neither the white page nor the black labels hold any
    truth, predicted = torch.arange(36) % 10, (torch.arange(36) + 1) % 10
    pixels = _misclassified_pixels(red, truth, predicted, torch.full((36,), 0.9), [str(k) for k in range(10)], 50)
    assert pixels.dtype == np.uint8 and pixels.shape[1:] == (MISCLASSIFIED_SIZE[0], 3)
    red_pixels = int(((pixels[..., 0] == 255) & (pixels[..., 1] == 0) & (pixels[..., 2] == 0)).sum())
    scale = round((red_pixels / 36) ** 0.5 / 8)
    assert scale >= 2 and red_pixels == 36 * (8 * scale) ** 2  # each image enlarged by whole pixels, none cut


def test_the_misclassified_grid_fits_large_photos_and_says_when_there_are_none():
    from cnnlab.diagnostics import MISCLASSIFIED_SIZE, _misclassified_pixels

    photos = torch.full((3, 3, 300, 300), 128, dtype=torch.uint8)
    pixels = _misclassified_pixels(photos, torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0]), torch.rand(3),
                                   ["cat", "dog", "a_very_long_class_name"], 3)
    assert pixels.shape[1] == MISCLASSIFIED_SIZE[0] and pixels.shape[0] <= MISCLASSIFIED_SIZE[1]
    assert (pixels == 128).all(axis=2).sum() > 3 * 100 * 100  # shrunk into their cells, still large
    empty = _misclassified_pixels(photos[:0], torch.tensor([]), torch.tensor([]), torch.tensor([]), ["cat"], 0)
    assert empty.shape == (MISCLASSIFIED_SIZE[1], MISCLASSIFIED_SIZE[0], 3) and (empty < 128).any()  # its text


def test_the_confusion_matrix_colours_are_matplotlibs_blues():
    import matplotlib

    from cnnlab.diagnostics import _blues

    values = np.linspace(0, 1, 11)
    theirs = (np.array(matplotlib.colormaps["Blues"](values))[:, :3] * 255).round()
    assert np.abs(_blues(values).astype(float) - theirs).max() <= 3  # theirs is quantized to 256 steps


@pytest.mark.parametrize("classes", [3, 10, 20, 100])
def test_the_confusion_matrix_draws_each_count_as_one_square_cell_in_its_colour(classes):
    from cnnlab.diagnostics import BLUES, _confusion_pixels

    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion[0, 0] = 50  # the one darkest cell: every other cell is empty
    pixels = _confusion_pixels(confusion, [f"class {k}" for k in range(classes)])
    darkest = np.array([int(BLUES[-1][k:k + 2], 16) for k in (1, 3, 5)])
    dark = (pixels == darkest).all(axis=2)
    dark[:, pixels.shape[1] - 100:] = False  # leave out the colour bar, at the right
    rows, cols = np.nonzero(dark)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert height == width and height * classes > 300  # one square cell, of a plot at least 300 pixels
    assert dark.sum() > 0.6 * height * width  # filled, less its count written in white
    if classes <= 20:
        assert dark.sum() < height * width  # the count is written in it
